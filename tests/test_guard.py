"""Fail closed (animatediff_webui/guard.py): what an exception in one of our hooks does.

The processing object here has what the WebUI's has that the guard touches
(init, sample, close, the do-not-save flags); tests/webui/test_webui_faults.py
raises in every real hook of a running WebUI.
"""

import logging

import pytest
import torch

from animatediff_webui import guard
from motion_module.errors import IncompatibleUNetError
from motion_module.request.params import ParamError


class Processing:
    """The WebUI's StableDiffusionProcessing, as far as the guard sees it."""

    def __init__(self):
        self.do_not_save_samples = False
        self.do_not_save_grid = False
        self.closed = 0

    def init(self, *args):
        return "init"

    def sample(self, *args, **kwargs):
        return "sampled"

    def close(self):
        self.closed += 1


class Script:
    def __init__(self, error=None):
        self.error = error
        self.calls = 0

    @guard.hook("process")
    def process(self, p, *args):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return "done"

    @guard.hook("before_process", requested=lambda args: bool(args and args[0] is True))
    def before_process(self, p, *args):
        raise AttributeError("'StableDiffusion' object has no attribute 'model'")


def enabled_processing():
    p = Processing()
    guard.mark_enabled(p)
    return p


@pytest.mark.parametrize("error", [RuntimeError("boom"), AttributeError("no attribute 'model'"),
                                   torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")])
def test_an_unexpected_error_fails_the_generation_naming_animatediff_the_hook_and_the_cause(error):
    p = enabled_processing()
    assert Script(error).process(p) is None  # the WebUI would have swallowed a raise here
    for step in (p.init, p.sample):
        with pytest.raises(guard.HookError) as caught:
            step()
        message = str(caught.value)
        assert message.startswith("AnimateDiff failed in process: ") and type(error).__name__ in message
        assert str(error) in message and caught.value.status_code == 500 and caught.value.detail == message
        assert caught.value.__cause__ is error
    assert p.do_not_save_samples and p.do_not_save_grid
    p.close()  # the error already reached the WebUI through p.init: not raised twice
    assert p.closed == 1


@pytest.mark.parametrize("error", [ParamError("video_length", "'video_length' must be ..."),
                                   IncompatibleUNetError("the motion module does not fit")])
def test_a_request_problem_keeps_its_message_and_is_answered_422(error):
    p = enabled_processing()
    Script(error).process(p)
    with pytest.raises(type(error)) as caught:
        p.init()
    assert caught.value is error and error.status_code == 422 and error.detail == str(error)


def test_an_error_with_its_own_status_keeps_it():
    error = RuntimeError("disk full")
    error.status_code = 507
    assert guard.as_failure("postprocess", error) is error


def test_without_animatediff_an_error_is_logged_once_and_the_generation_goes_on(caplog):
    p = Processing()
    script = Script(RuntimeError("a broken third-party object"))
    with caplog.at_level(logging.WARNING, logger="animatediff"):
        for _ in range(3):
            assert script.process(p) is None
    assert [r.getMessage() for r in caplog.records].count(
        "ignored an error in process while AnimateDiff is not enabled: RuntimeError: a broken third-party object") == 1
    assert guard.failure(p) is None
    assert p.init() == "init" and p.sample() == "sampled"
    p.close()
    assert p.closed == 1 and not p.do_not_save_samples


def test_before_parsing_the_raw_request_decides():
    asked = Processing()
    Script().before_process(asked, True)
    with pytest.raises(guard.HookError, match="before_process: AttributeError"):
        asked.init()
    not_asked = Processing()
    Script().before_process(not_asked, False)
    assert not_asked.init() == "init"


def test_a_failure_after_the_last_sampling_is_raised_by_close_once():
    p = enabled_processing()
    failure = guard.HookError("postprocess_batch", RuntimeError("late"))
    guard.fail(p, failure)
    with pytest.raises(guard.HookError):
        p.close()
    assert p.closed == 1
    p.close()  # the instance override is gone: the WebUI's own close again
    assert p.closed == 2


def test_fail_again_after_the_overrides_were_dropped_puts_them_back_with_the_first_error():
    p = enabled_processing()
    first = guard.HookError("postprocess_batch", RuntimeError("first"))
    guard.fail(p, first)
    for name in ("sample", "init", "close"):  # what run.finish does
        p.__dict__.pop(name)
    guard.fail(p, RuntimeError("second"))
    with pytest.raises(guard.HookError) as caught:
        p.close()
    assert caught.value is first and p.closed == 1


def test_after_a_failure_the_hooks_prepare_nothing_more():
    p = enabled_processing()
    script = Script(RuntimeError("first"))
    script.process(p)
    script.error = None
    assert script.process(p) is None and script.calls == 1


def test_a_callback_failure_is_raised_at_the_next_unet_call():
    p = enabled_processing()

    class Params:
        class denoiser:
            pass

    Params.denoiser.p = p

    @guard.callback("on_cfg_denoiser", lambda params: params.denoiser.p)
    def on_cfg_denoiser(params):
        raise KeyError("crossattn")

    on_cfg_denoiser(Params)  # swallowed, as the WebUI would
    with pytest.raises(guard.HookError, match="on_cfg_denoiser: KeyError"):
        guard.raise_failure(p)
    p.close()  # raised already: close does not raise it again
    guard.raise_failure(Processing())  # nothing recorded: nothing raised


def test_a_callback_without_a_processing_object_is_only_logged(caplog):
    @guard.callback("on_cfg_denoiser", lambda params: params.denoiser.p)
    def on_cfg_denoiser(params):
        raise RuntimeError("no denoiser here")

    with caplog.at_level(logging.WARNING, logger="animatediff"):
        assert on_cfg_denoiser(object()) is None
    assert any("no denoiser here" in r.getMessage() for r in caplog.records)


def test_interrupts_are_not_caught():
    p = enabled_processing()
    with pytest.raises(KeyboardInterrupt):
        Script(KeyboardInterrupt()).process(p)
    assert guard.failure(p) is None

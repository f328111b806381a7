"""Per-window ControlNet hints: the rows each UNet call gets.

ControlNet feeds `hint_cond` to the UNet call unchanged, so the hint must have
exactly the rows of the call it is used in, and row r must be the frame that
row r of x shows. The pure functions are checked directly, and then through a
real ldm UNet with context windows, with a stand-in for ControlNet's
instance-level forward that asserts this on every call it receives.
"""

import contextlib

import pytest
import torch

import motion_module as mm
from motion_module.context.hints import frames_of_rows, hint_rows
from motion_module.synthetic import random_model
from unets import channels_for, inputs, sd15_unet


def _hint(frames, repeats=1):
    """A hint whose row for frame f holds the value f everywhere."""
    base = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1, 1).expand(frames, 3, 8, 8)
    return base.repeat(repeats, 1, 1, 1).contiguous()


def test_frames_of_rows_counts_frames_within_each_video():
    assert frames_of_rows(8, 4).tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert frames_of_rows(3, 3).tolist() == [0, 1, 2]


def test_one_row_hint_is_shared_by_every_frame():
    hint = torch.randn(1, 3, 8, 8)
    assert hint_rows(hint, torch.tensor([5, 6, 7]), 16) is hint


@pytest.mark.parametrize("repeats", [1, 2, 3])
def test_rows_are_the_frames_of_the_call_for_cond_and_uncond(repeats):
    # repeats 2: ControlNet's [c, c] with batch cond/uncond on; 3: two conds (AND) and uncond.
    hint = _hint(12, repeats)
    index = torch.tensor([4, 5, 6, 7, 4, 5, 6, 7])  # one window, cond and uncond in one call
    rows = hint_rows(hint, index, 12)
    assert rows.shape == (8, 3, 8, 8)
    assert rows[:, 0, 0, 0].tolist() == index.float().tolist()


def test_a_hint_that_is_not_per_frame_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="7 rows.*12 frames"):
        hint_rows(_hint(7), torch.tensor([0, 1]), 12)


def test_non_tensor_hints_pass_through():
    assert hint_rows(None, torch.tensor([0]), 4) is None


class FakeControlNet:
    """What matters of ControlNet's hook: a hint on its own object, read by an
    instance-level UNet forward installed before the injection."""

    def __init__(self, unet, hint):
        self.hint_cond = hint
        self.calls = []
        original = unet.forward

        def forward(x, *args, **kwargs):
            hint = self.hint_cond
            assert hint.shape[0] in (1, x.shape[0]), (hint.shape, x.shape)
            self.calls.append((x[:, 0, 0, 0].clone(), hint[:, 0, 0, 0].clone()))
            return original(x, *args, **kwargs)

        unet.forward = forward

    def around_call(self, frame_index, video_length):
        @contextlib.contextmanager
        def swapped():
            saved = self.hint_cond
            self.hint_cond = hint_rows(saved, frame_index, video_length)
            try:
                yield
            finally:
                self.hint_cond = saved
        return swapped()


def _frame_tagged_inputs(videos, frames):
    x, t, c = inputs(videos=videos, frames=frames, size=8)
    x[:, 0, 0, 0] = torch.arange(frames, dtype=torch.float32).repeat(videos)  # row -> its frame number
    return x, t, c


@pytest.mark.parametrize("videos", [1, 2])  # cond and uncond in separate calls, or joint
@pytest.mark.parametrize("context", [None, 8])
def test_every_unet_call_gets_the_hint_rows_of_its_frames(videos, context):
    frames = 20
    unet = sd15_unet()
    model = random_model("v2", channels=channels_for("v2"))
    controlnet = FakeControlNet(unet, _hint(frames, repeats=2))  # built for batch cond/uncond
    original_hint = controlnet.hint_cond
    options = None if context is None else mm.ContextOptions(length=context, overlap=2, stride=1,
                                                             closed_loop="R-P")
    x, t, c = _frame_tagged_inputs(videos, frames)
    with torch.no_grad(), mm.inject(unet, model, frames=frames, context=options,
                                    around_call=controlnet.around_call):
        out = unet(x, t, context=c)
    assert torch.isfinite(out).all()
    assert controlnet.calls
    for x_frames, hint_frames in controlnet.calls:
        assert torch.equal(x_frames, hint_frames)
        assert len(x_frames) == videos * (frames if context is None else context)
    assert controlnet.hint_cond is original_hint  # restored after every call
    assert "forward" in unet.__dict__  # ControlNet's own forward is left in place


def test_without_the_hook_a_per_frame_hint_does_not_fit_a_window():
    # What the hook prevents: ControlNet would get 2·frames hint rows for a window's rows.
    frames = 20
    unet = sd15_unet()
    model = random_model("v2", channels=channels_for("v2"))
    FakeControlNet(unet, _hint(frames, repeats=2))
    x, t, c = _frame_tagged_inputs(1, frames)
    options = mm.ContextOptions(length=8, overlap=2, stride=1, closed_loop="R-P")
    with torch.no_grad(), mm.inject(unet, model, frames=frames, context=options):
        with pytest.raises(AssertionError):
            unet(x, t, context=c)


@pytest.mark.parametrize("error", [RuntimeError("boom"), torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")])
def test_a_failure_inside_a_window_puts_the_hint_and_the_unet_back(error):
    # An exception or an out-of-memory error in the motion module, mid-window: ControlNet's own hint
    # object is back in place, and the UNet computes exactly what it did before.
    frames = 20
    unet = sd15_unet()
    model = random_model("v2", channels=channels_for("v2"))
    x, t, c = _frame_tagged_inputs(1, frames)
    with torch.no_grad():
        plain = unet(x[:4], t[:4], context=c[:4])
    controlnet = FakeControlNet(unet, _hint(frames, repeats=2))
    original_hint, controlnet_forward = controlnet.hint_cond, unet.forward
    failing = model.down_modules()[3]

    def explode(*args, **kwargs):
        raise error

    failing.forward = explode
    options = mm.ContextOptions(length=8, overlap=2, stride=1, closed_loop="R-P")
    with pytest.raises(type(error)), torch.no_grad():
        with mm.inject(unet, model, frames=frames, context=options, around_call=controlnet.around_call):
            unet(x, t, context=c)
    del failing.forward
    assert controlnet.hint_cond is original_hint
    assert unet.forward == controlnet_forward and not mm.is_injected(unet)
    del unet.forward  # ControlNet's own clean-up
    with torch.no_grad():
        assert torch.equal(unet(x[:4], t[:4], context=c[:4]), plain)

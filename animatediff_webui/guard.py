"""Fail closed: what an exception in one of our hooks does to the generation.

The WebUI catches exceptions raised in script hooks and callbacks, logs them
and carries on. For a generation with AnimateDiff enabled that would mean a
plain batch of unrelated images, written and returned as a video with an
infotext saying AnimateDiff ran. So every hook and callback of ours runs
under `hook` / `callback`:

- AnimateDiff enabled for this `p`: any exception fails the generation
  (`fail`). A request problem (ValueError: ParamError, an unusable motion
  module...) keeps its message and is answered 422; anything else becomes a
  `HookError` naming the hook and the cause, answered 500.
- AnimateDiff not enabled: the error is logged once and the plain
  generation goes on; a disabled extension never blocks one.

`fail` works at any point of a generation. Before or between samplings,
`p.init` and `p.sample` raise the error (the WebUI calls one of them next,
and nothing is sampled with a half-prepared run); after the last sampling,
images are no longer saved and `p.close`, which the WebUI calls at the end
of every generation and whose exceptions reach the UI and the API, raises
it. Inside sampling, where callbacks' exceptions are swallowed, the next
UNet call raises it (`raise_failure`, from the injection's per-call hook).

WebUI-free: it touches only attributes every processing object has.
"""

import functools
import threading

from .log import logger

ENABLED = "animatediff_enabled"
FAILURE = "animatediff_failure"

_logged = set()
_logged_lock = threading.Lock()


class HookError(RuntimeError):
    """An unexpected error in one of our hooks during an AnimateDiff generation.

    `status_code` and `detail` are instance attributes: the WebUI's API error
    handler reads them there."""

    def __init__(self, hook: str, cause: BaseException):
        message = f"AnimateDiff failed in {hook}: {type(cause).__name__}: {cause}"
        super().__init__(message)
        self.hook = hook
        self.status_code = 500
        self.detail = message


def as_failure(hook: str, error: BaseException) -> BaseException:
    """The error the user gets: a request problem as it is (422), anything else wrapped (500)."""
    if isinstance(error, HookError) or getattr(error, "status_code", None) is not None:
        return error
    if isinstance(error, ValueError):
        error.status_code = 422
        error.detail = str(error)
        return error
    failure = HookError(hook, error)
    failure.__cause__ = error
    return failure


def mark_enabled(p) -> None:
    """AnimateDiff is enabled for this generation: from now on our errors fail it."""
    setattr(p, ENABLED, True)


def enabled(p) -> bool:
    return bool(getattr(p, ENABLED, False))


def failure(p):
    """The error this generation failed with, or None."""
    state = getattr(p, FAILURE, None)
    return state["error"] if state else None


def fail(p, error: BaseException) -> None:
    """Make this generation fail with `error` (the first one recorded wins).

    Safe to call again, for example after `run.finish` dropped the
    processing object's overrides: it puts them back."""
    state = getattr(p, FAILURE, None)
    if state is None:
        state = {"error": error, "raised": False}
        setattr(p, FAILURE, state)

    def raise_it(*args, **kwargs):
        raise_failure(p)

    # Frames of a failed video are not saved, not even the ones already decoded.
    p.do_not_save_samples = True
    p.do_not_save_grid = True
    p.init = p.sample = raise_it
    close = p.close

    def close_and_raise():
        p.__dict__.pop("close", None)
        close()
        if not state["raised"]:
            raise_it()

    p.close = close_and_raise


def raise_failure(p) -> None:
    """Raise the recorded failure, if any (inside sampling, where the WebUI
    would swallow it in a callback)."""
    state = getattr(p, FAILURE, None)
    if state is not None:
        state["raised"] = True
        raise state["error"]


def _handle(p, name, error, on):
    if on:
        failure = as_failure(name, error)
        if isinstance(failure, HookError):
            logger.error("%s", failure, exc_info=error)
        else:
            logger.error("%s", failure)
        fail(p, failure)
        return
    key = (name, type(error).__name__, str(error))
    with _logged_lock:
        first = key not in _logged
        _logged.add(key)
    if first:
        logger.warning("ignored an error in %s while AnimateDiff is not enabled: %s: %s", name,
                       type(error).__name__, error, exc_info=error)


def hook(name: str, requested=None):
    """Decorate a script hook `(self, p, *args, **kwargs)`. Once the generation
    has failed, the hook does nothing (`p.close` still cleans up and raises).

    requested(args)  whether the request asks for AnimateDiff, for the hook
                     that runs before `mark_enabled` can have been called."""
    def wrap(method):
        @functools.wraps(method)
        def guarded(self, p, *args, **kwargs):
            if failure(p) is not None:
                return None  # the generation already failed: prepare nothing more for it
            try:
                return method(self, p, *args, **kwargs)
            except Exception as e:
                _handle(p, name, e, enabled(p) or (requested is not None and _safely(requested, (args,))))
        return guarded
    return wrap


def callback(name: str, processing_of):
    """Decorate a script callback `(params)`; processing_of(params) finds its `p`."""
    def wrap(function):
        @functools.wraps(function)
        def guarded(params):
            try:
                return function(params)
            except Exception as e:
                p = _safely(processing_of, (params,), default=None)
                if p is None:
                    _handle(None, name, e, False)
                else:
                    _handle(p, name, e, enabled(p))
        return guarded
    return wrap


def _safely(function, args, default=False):
    try:
        return function(*args)
    except Exception:
        return default

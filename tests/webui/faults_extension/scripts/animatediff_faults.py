"""Test-only WebUI extension: faults on demand inside the running WebUI.

tests/webui/test_webui_faults.py arms one fault at a time over HTTP; it fires
once, at its place, on the given call. Link this folder into a *test*
WebUI's extensions folder (see README, "Tests against a real WebUI"); it
has no business in a real one.

Places:
  motion_module  each temporal transformer's forward (inside sampling)
  vae_decode     the WebUI's decode of a batch of latents
  write          a GIF whose bytes are in its temporary file, not yet committed
Actions: raise, oom (torch's out-of-memory error), interrupt, skip (what the
UI's buttons and /sdapi/v1/interrupt|skip do: set the flag, carry on).
"""

import contextlib
import sys
import threading

import torch

from modules import processing, script_callbacks, shared

PLACES = ("motion_module", "vae_decode", "write")
ACTIONS = ("raise", "oom", "interrupt", "skip")
_armed = {}
_fired = []
_lock = threading.Lock()


def _hit(place):
    with _lock:
        fault = _armed.get(place)
        if fault is None:
            return
        if fault["after"] > 0:
            fault["after"] -= 1
            return
        del _armed[place]
        _fired.append(f"{place}:{fault['do']}")
    action = fault["do"]
    if action == "raise":
        raise RuntimeError(f"fault injected at {place}")
    if action == "oom":
        raise torch.OutOfMemoryError(f"CUDA out of memory (fault injected at {place})")
    if action == "interrupt":
        shared.state.interrupt()
    else:
        shared.state.skip()


def _ours(suffix):
    for name, module in list(sys.modules.items()):
        if name.startswith("animatediff_extension.") and name.endswith(suffix):
            return module
    raise RuntimeError(f"the AnimateDiff extension's {suffix} is not loaded")


_installed = []


def _install():
    if _installed:
        return
    layers = _ours("motion_module.layers")
    gif = _ours("motion_module.video.gif")
    forward = layers.TemporalTransformer.forward

    def faulty_forward(self, *args, **kwargs):
        _hit("motion_module")
        return forward(self, *args, **kwargs)

    decode = processing.decode_latent_batch

    def faulty_decode(*args, **kwargs):
        _hit("vae_decode")
        return decode(*args, **kwargs)

    atomic_output = gif.atomic_output

    @contextlib.contextmanager
    def faulty_atomic_output(final):
        with atomic_output(final) as temp:
            yield temp
            _hit("write")

    layers.TemporalTransformer.forward = faulty_forward
    processing.decode_latent_batch = faulty_decode
    gif.atomic_output = faulty_atomic_output
    _installed.append(True)


def _routes(_demo, app):
    from fastapi import HTTPException

    def arm(at: str, do: str, after: int = 0):
        if at not in PLACES or do not in ACTIONS or after < 0:
            raise HTTPException(422, f"at: one of {PLACES}; do: one of {ACTIONS}; after >= 0")
        _install()
        with _lock:
            _armed[at] = {"do": do, "after": after}
        return {"armed": dict(_armed)}

    def reset():
        with _lock:
            _armed.clear()
            fired = list(_fired)
            _fired.clear()
        return {"fired": fired}

    def fired():
        with _lock:
            return {"fired": list(_fired), "armed": dict(_armed)}

    app.add_api_route("/animatediff-faults/v1/arm", arm, methods=["POST"])
    app.add_api_route("/animatediff-faults/v1/reset", reset, methods=["POST"])
    app.add_api_route("/animatediff-faults/v1/fired", fired, methods=["GET"])


script_callbacks.on_app_started(_routes)

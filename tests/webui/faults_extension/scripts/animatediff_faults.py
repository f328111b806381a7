"""Test-only WebUI extension: faults on demand inside the running WebUI.

tests/webui/test_webui_faults.py arms one fault at a time over HTTP; it fires
once, at its place, on the given call. Link this folder into a *test*
WebUI's extensions folder (see docs/hardening.md, "Running them"); it
has no business in a real one.

Places:
  motion_module  each temporal transformer's forward (inside sampling)
  vae_decode     the WebUI's decode of a batch of latents
  write          a GIF whose bytes are in its temporary file, not yet committed
  and one inside each of our script's hooks and callbacks (HOOKS: the first
  thing of ours that hook calls, so the fault is raised where the WebUI
  would catch it): before_process, process, after_extra_networks_activate,
  before_process_batch, postprocess_batch, postprocess, on_cfg_denoiser (the
  last only with a prompt-travel prompt), and before_process_off (that hook
  with AnimateDiff not enabled).
  after_bind     Forge: right after our process_before_every_sampling, as
                 another extension's hook that runs after ours.
Actions: raise (RuntimeError), attribute (AttributeError), oom (torch's
out-of-memory error), interrupt, skip (what the UI's buttons and
/sdapi/v1/interrupt|skip do: set the flag, carry on), and at after_bind
replace_wrapper: set a model function wrapper of its own on this sampling's
UNet patcher in place of ours, as another extension could (it calls the
model on the whole batch).
"""

import contextlib
import sys
import threading

import torch

from modules import processing, script_callbacks, shared

# hook -> (our module, the function of it that the hook calls)
HOOKS = {
    "before_process": ("animatediff_webui.run", "prepare"),
    "process": ("animatediff_webui.run", "arm"),
    "after_extra_networks_activate": ("animatediff_webui.motion_lora", "fill_official_adapters"),
    "process_before_every_sampling": ("animatediff_webui.run", "bind_for_sampling"),  # Forge only
    "before_process_batch": ("animatediff_webui.run", "reschedule_noise"),
    "postprocess_batch": ("animatediff_webui.run", "note_batch"),
    "postprocess": ("animatediff_webui.outputs", "write"),
    "on_cfg_denoiser": ("animatediff_webui.travel", "_rows"),
    "before_process_off": ("animatediff_webui.motion_lora", "note_unused"),  # AnimateDiff not enabled
}
PLACES = ("motion_module", "vae_decode", "write", *HOOKS, "after_bind")
ACTIONS = ("raise", "attribute", "oom", "interrupt", "skip", "replace_wrapper")
_armed = {}
_fired = []
_lock = threading.Lock()


def _whole_batch(apply_model, params):
    return apply_model(params["input"], params["timestep"], **params["c"])


def _hit(place, p=None):
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
    if action == "attribute":
        raise AttributeError(f"'StableDiffusion' object has no attribute 'model' (fault injected at {place})")
    if action == "oom":
        raise torch.OutOfMemoryError(f"CUDA out of memory (fault injected at {place})")
    if action == "replace_wrapper":
        p.sd_model.forge_objects.unet.set_model_unet_function_wrapper(_whole_batch)
    elif action == "interrupt":
        shared.state.interrupt()
    else:
        shared.state.skip()


def _ours(suffix):
    for name, module in list(sys.modules.items()):
        if name.startswith("animatediff_extension.") and name.endswith(suffix):
            return module
    raise RuntimeError(f"the AnimateDiff extension's {suffix} is not loaded")


def _faulty(place, function):
    def faulty(*args, **kwargs):
        _hit(place)
        return function(*args, **kwargs)
    return faulty


_installed = []


def _install():
    if _installed:
        return
    layers = _ours("motion_module.layers")
    gif = _ours("motion_module.video.gif")
    atomic_output = gif.atomic_output

    @contextlib.contextmanager
    def faulty_atomic_output(final):
        with atomic_output(final) as temp:
            yield temp
            _hit("write")

    # A plain function as the class attribute: the instance comes through *args.
    layers.TemporalTransformer.forward = _faulty("motion_module", layers.TemporalTransformer.forward)
    processing.decode_latent_batch = _faulty("vae_decode", processing.decode_latent_batch)
    gif.atomic_output = faulty_atomic_output
    for place, (suffix, name) in HOOKS.items():
        module = _ours(suffix)
        setattr(module, name, _faulty(place, getattr(module, name)))
    run = _ours("animatediff_webui.run")
    bind = run.bind_for_sampling

    def bind_then_hit(p, *args, **kwargs):
        bind(p, *args, **kwargs)
        _hit("after_bind", p)

    run.bind_for_sampling = bind_then_hit
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

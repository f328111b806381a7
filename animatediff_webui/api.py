"""API integration: refuse bad AnimateDiff args with HTTP 422 before the WebUI
does anything, and list the available motion modules.

The WebUI catches exceptions raised inside script hooks and still answers
200, so validation cannot live in the hooks alone. We wrap the ASGI apps of
the txt2img/img2img routes (`asgi.py`): a body that mentions AnimateDiff is
checked with the same parser the script uses, and a bad one is answered with
a message naming the field, while the WebUI state is still untouched (no
checkpoint switch, nothing injected). Wrapping routes, unlike adding a
middleware, works at any time after start-up.
"""

import functools
import json

from ..motion_module.checkpoint import tensor_names
from ..motion_module.errors import CheckpointError, MotionModuleError
from ..motion_module.probe import probe
from ..motion_module.request.docs import parameter_listing
from ..motion_module.request.infotext import INFOTEXT_KEY, paste_fields
from ..motion_module.request.params import ParamError, check_cache_depth, check_context_fits, from_script_args
from ..motion_module.request.settings import SETTINGS


from . import asgi, host, inputs, models, motion_lora, player, stepcache, travel, xyz
from .log import logger

ROUTES = {"/sdapi/v1/txt2img": False, "/sdapi/v1/img2img": True}
SCRIPT_NAME = "animatediff"


def script_args(body: dict):
    """The AnimateDiff args of a request body (the WebUI matches titles case-insensitively)."""
    scripts = body.get("alwayson_scripts") or {}
    if not isinstance(scripts, dict):
        return None
    for name, entry in scripts.items():
        if isinstance(name, str) and name.lower() == SCRIPT_NAME:
            if isinstance(entry, dict) and "args" in entry:
                return entry["args"]
            return None
    return None


def validate_body(body) -> None:
    """Raises ParamError for AnimateDiff args the run would refuse."""
    if not isinstance(body, dict):
        return
    args = script_args(body)
    if args is None:
        return
    if not isinstance(args, (list, tuple)):
        raise ParamError("args", "'args' must be a list: [{...}] or positional values")
    params = from_script_args(args, warn=lambda msg: logger.warning("%s", msg))
    if not params.enable:
        return
    params = inputs.checked(params)
    sources = inputs.open_sources(params, decode=False)  # probes a video, checks folders and roots
    try:
        resolved = params.resolve(inputs.source_count(sources))
    finally:
        sources.remove()
    prompt = travel.source_prompt(body.get("prompt", ""))
    travel.parse(prompt, resolved)  # a malformed travel prompt is refused here
    loras = _readable_motion_loras(prompt)  # malformed tags and unreadable files too
    sd_is_xl = _checkpoint_is_sdxl(body)
    if sd_is_xl is not None:
        check_cache_depth(params, sd_is_xl)
    if not params.model:
        if loras and sd_is_xl:
            _refuse_loras(loras, "an SDXL checkpoint's motion module")
        return
    try:
        detection = probe(models.resolve(params.model, sd_is_xl=False))
    except MotionModuleError as e:  # unreadable or not a motion module
        raise ParamError("model", f"'model' {params.model!r} cannot be used: {e}") from e
    check_context_fits(resolved, detection.max_frames, f"the {detection.kind.name} motion module {params.model!r}")
    if sd_is_xl is not None and detection.kind.is_sdxl != sd_is_xl:
        raise ParamError("model", f"'model' {params.model!r} is {'an SDXL' if detection.kind.is_sdxl else 'an SD1.5'} "
                                  f"motion module ({detection.kind.name}) but the checkpoint is "
                                  f"{'SDXL' if sd_is_xl else 'SD1.5'}; choose a motion module for it")
    if loras and detection.kind.is_sdxl:
        _refuse_loras(loras, f"the {detection.kind.name} motion module {params.model!r}")


def _checkpoint_is_sdxl(body):
    """Whether the request runs on an SDXL checkpoint: the loaded one, the
    one its override_settings switch to, or (Forge) the one chosen in the
    settings and not yet loaded, told from its tensor names (SDXL's
    two text encoders are under 'conditioner.') without loading it. None when
    not known (an unknown name, an unreadable file): the run itself then
    refuses a mismatch."""
    name = (body.get("override_settings") or {}).get("sd_model_checkpoint")
    model = host.loaded_model()
    if name is None:
        path = host.next_checkpoint_file()
    else:
        from modules import sd_models

        info = sd_models.get_closet_checkpoint_match(str(name))
        path = None if info is None else info.filename
        if path is None:
            return None
    if path is None or path == getattr(getattr(model, "sd_checkpoint_info", None), "filename", None):
        return None if model is None else bool(getattr(model, "is_sdxl", False))
    try:
        return any(key.startswith("conditioner.") for key in tensor_names(path))
    except CheckpointError as e:  # the WebUI reports an unreadable checkpoint itself
        logger.debug("checkpoint %s not inspected: %s", path, e)
        return None


def _readable_motion_loras(prompt):
    """Names of the motion LoRAs tagged in `prompt`, each read (and cached for
    the run) so that a broken file is refused here, not during the run."""
    try:
        return [name for name, _, _ in motion_lora.motion_loras(prompt)]
    except MotionModuleError as e:
        raise ParamError("prompt", f"a motion LoRA in the prompt cannot be used: {e}") from e


def _refuse_loras(names, module):
    raise ParamError("prompt", f"motion LoRAs are trained for the SD1.5 motion modules and cannot go on {module}; "
                               f"remove {', '.join(map(repr, names))} from the prompt")


def args_from_infotext(body: dict, is_img2img: bool):
    """AnimateDiff args restored from the request's `infotext` field, or None.

    The WebUI's API restores script args from an infotext through the UI
    components' paste keys, but its parser never calls `on_infotext_pasted`,
    which splits our single `AnimateDiff: "..."` entry into those keys. So we
    do it here, only when the request gives no AnimateDiff args of its own
    (explicit values win, as everywhere in the WebUI API)."""
    text = body.get("infotext")
    if not isinstance(text, str) or INFOTEXT_KEY not in text or script_args(body) is not None:
        return None
    from modules.infotext_utils import parse_generation_parameters

    value = parse_generation_parameters(text).get(INFOTEXT_KEY)
    if not isinstance(value, str):
        return None
    return {"enable": True, **paste_fields(value, is_img2img)}


def check_body(body: bytes, is_img2img: bool):
    """asgi.wrap's check: restore args from an infotext, then refuse bad args
    with 422 naming the field, before the WebUI does anything."""
    try:
        request = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None  # not JSON: the WebUI's own validation answers it
    replaced = None
    restored = args_from_infotext(request, is_img2img) if isinstance(request, dict) else None
    if restored is not None:
        request["alwayson_scripts"] = {**(request.get("alwayson_scripts") or {}), SCRIPT_NAME: {"args": [restored]}}
        replaced = json.dumps(request).encode()
    try:
        validate_body(request)
    except ParamError as e:
        logger.warning("refused API request: %s", e)
        raise asgi.Refusal(422, {"error": "AnimateDiffParamError", "field": e.field, "detail": str(e),
                                 "errors": str(e)}) from None
    return replaced


MASK = "***"


def _keep_masked_secrets(keys, body: bytes):
    try:
        request = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(request, dict) or not any(request.get(k) == MASK for k in keys):
        return None
    return json.dumps({k: v for k, v in request.items() if not (k in keys and v == MASK)}).encode()


def status():
    """What the extension holds between requests: nothing but the cached module.
    A run that left anything behind (an injected UNet, decoded frames, extra
    callbacks) shows here."""
    import os

    from modules import script_callbacks

    from ..motion_module import is_injected

    unet = host.unet_of(host.loaded_model())
    module = models.cached()
    work = inputs.work_folder()
    return {
        "webui": host.NAME,
        "cached_module": models.cached_name(),
        "cached_module_device": str(next(module.parameters()).device) if module is not None else None,
        "cached_module_managed_by_forge": host.is_managed(module),
        "modules_in_memory": models.in_memory(),
        "unet_injected": bool(unet is not None and is_injected(unet)),
        "decoded_frame_folders": len(os.listdir(work)) if os.path.isdir(work) else 0,
        "callbacks": {name: len(entries) for name, entries in script_callbacks.callback_map.items() if entries},
        "last_step_cache": dict(stepcache.last_run),
    }


def register(_demo, app):
    secrets = [s.key for s in SETTINGS if s.ui == "password"]
    for route in app.routes:
        path = getattr(route, "path", None)
        if not hasattr(route, "app") or getattr(route.app, "animatediff_wrapped", False):
            continue
        if path in ROUTES:
            route.app = asgi.wrap(route.app, functools.partial(check_body, is_img2img=ROUTES[path]))
        elif path == "/sdapi/v1/options" and "GET" in getattr(route, "methods", ()):
            # The WebUI answers every stored setting as it is, our S3 secret key included.
            route.app = asgi.mask_json_keys(route.app, secrets, MASK)
        elif path == "/sdapi/v1/options" and "POST" in getattr(route, "methods", ()):
            # A client that posts back the options it read must not store the mask as the secret.
            route.app = asgi.wrap(route.app, functools.partial(_keep_masked_secrets, secrets))

    def list_models():
        return {"models": models.describe_all()}

    def list_params():
        return {"params": parameter_listing()}

    def unload_model(to_cpu: bool = False):
        """Drop the cached motion module (or only move it to the CPU)."""
        return {"message": models.unload(to_cpu_only=to_cpu)}

    app.add_api_route("/animatediff/v1/models", list_models, methods=["GET"])
    app.add_api_route("/animatediff/v1/status", status, methods=["GET"])
    app.add_api_route("/animatediff/v1/unload", unload_model, methods=["POST"])
    app.add_api_route("/animatediff/v1/xyz", lambda: {"txt2img": xyz.axis_indexes(False),
                                                      "img2img": xyz.axis_indexes(True)}, methods=["GET"])
    app.add_api_route("/animatediff/v1/params", list_params, methods=["GET"])
    app.add_api_route("/animatediff/v1/videos", player.videos, methods=["GET"])  # the UI's player

"""API integration: refuse bad AnimateDiff args with HTTP 422 before the WebUI
does anything, and list the available motion modules.

The WebUI catches exceptions raised inside script hooks and still answers
200, so validation cannot live in the hooks alone. We wrap the ASGI apps of
the txt2img/img2img routes: the request body is checked with the same parser
the script uses, and a bad one is answered with a message naming the field,
while the WebUI state is still untouched (no checkpoint switch, nothing
injected). Wrapping routes, unlike adding a middleware, works at any time
after start-up.
"""

import json

from motion_module.errors import MotionModuleError
from motion_module.probe import probe
from motion_module.request.docs import parameter_listing
from motion_module.request.infotext import INFOTEXT_KEY, paste_fields
from motion_module.request.params import ParamError, from_script_args

from . import inputs, models
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
    params, source_frames = inputs.decode(params)
    resolved = params.resolve(source_frames)
    if not params.model:
        return
    try:
        detection = probe(models.resolve(params.model, sd_is_xl=False))
    except MotionModuleError as e:  # unreadable or not a motion module
        raise ParamError("model", f"'model' {params.model!r} cannot be used: {e}") from e
    if resolved.context_length > detection.max_frames:
        raise ParamError("batch_size", f"'batch_size' (context batch size) must be at most "
                                       f"{detection.max_frames} for the {detection.kind.name} motion module "
                                       f"{params.model!r} (its position-encoding length), got "
                                       f"{resolved.context_length}")


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


def _error_response(error: ParamError):
    from starlette.responses import JSONResponse

    return JSONResponse(status_code=422, content={"error": "AnimateDiffParamError", "field": error.field,
                                                  "detail": str(error), "errors": str(error)})


def _wrap(route_app, is_img2img):
    async def app(scope, receive, send):
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        try:
            request = json.loads(body or b"{}")
            restored = args_from_infotext(request, is_img2img) if isinstance(request, dict) else None
            if restored is not None:
                request["alwayson_scripts"] = {**(request.get("alwayson_scripts") or {}),
                                               SCRIPT_NAME: {"args": [restored]}}
                messages = [{"type": "http.request", "body": json.dumps(request).encode(), "more_body": False}]
            validate_body(request)
        except ParamError as e:
            logger.warning("refused API request: %s", e)
            await _error_response(e)(scope, receive, send)
            return
        except (ValueError, UnicodeDecodeError):
            pass  # not JSON: the WebUI's own validation answers it

        async def replay():
            return messages.pop(0) if messages else await receive()

        await route_app(scope, replay, send)

    app.animatediff_wrapped = True
    return app


def register(_demo, app):
    for route in app.routes:
        path = getattr(route, "path", None)
        if path in ROUTES and hasattr(route, "app") and not getattr(route.app, "animatediff_wrapped", False):
            route.app = _wrap(route.app, ROUTES[path])

    def list_models():
        return {"models": models.describe_all()}

    def list_params():
        return {"params": parameter_listing()}

    app.add_api_route("/animatediff/v1/models", list_models, methods=["GET"])
    app.add_api_route("/animatediff/v1/params", list_params, methods=["GET"])

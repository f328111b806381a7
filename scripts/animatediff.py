"""AnimateDiff for the AUTOMATIC1111 WebUI: the script the WebUI loads.

Thin on purpose: it parses the arguments with the engine's parser and hands
the WebUI objects to `animatediff_webui`, which drives `motion_module`.
"""

import importlib
import os
import sys
import types

EXTENSION_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _extension_package(name="animatediff_extension", root=EXTENSION_ROOT):
    """Our folder as one package under a name no other extension uses.

    The WebUI puts an extension's folder at the front of sys.path only while
    it loads that extension's scripts. Importing our packages by their own
    names (motion_module, model, ...) would then pick up another extension's
    module of the same name if it was imported first (the reference extension
    ships a top-level motion_module.py), and leaving our folder on sys.path
    would shadow theirs. As subpackages of this one, ours are reached only
    through it, and sys.path is never changed."""
    package = sys.modules.get(name)
    if package is None or list(getattr(package, "__path__", ())) != [root]:
        package = types.ModuleType(name)
        package.__path__ = [root]
        sys.modules[name] = package
    return name


PACKAGE = _extension_package()

from modules import script_callbacks, scripts, shared  # noqa: E402

api, cn_compat, guard, i2ibatch, inputs, log, motion_lora, outputs, run, samplers, settings, ui, xyz = (
    importlib.import_module(f"{PACKAGE}.animatediff_webui.{name}")
    for name in ("api", "cn_compat", "guard", "i2ibatch", "inputs", "log", "motion_lora", "outputs", "run",
                 "samplers", "settings", "ui", "xyz"))
travel = importlib.import_module(f"{PACKAGE}.animatediff_webui.travel")
_params = importlib.import_module(f"{PACKAGE}.motion_module.request.params")
ParamError, from_script_args = _params.ParamError, _params.from_script_args

logger = log.configure(getattr(shared.cmd_opts, "animatediff_loglevel", "INFO"))


def _asks_for_animatediff(args) -> bool:
    """Whether raw script args enable AnimateDiff (for an error raised before they are parsed)."""
    first = args[0] if args else None
    if isinstance(first, dict):
        return first.get("enable") is True
    return getattr(first, "enable", first) is True


class AnimateDiffScript(scripts.Script):
    def title(self):
        return "AnimateDiff"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    prompt_box = None

    def after_component(self, component, **kwargs):
        # The tab's prompt box is built before the scripts' UI: keep it for the travel preview.
        if kwargs.get("elem_id") == ("img2img_prompt" if self.is_img2img else "txt2img_prompt"):
            self.prompt_box = component

    def ui(self, is_img2img):
        components, by_name = ui.build(is_img2img, self.prompt_box)
        self.infotext_fields = ui.infotext_fields(by_name, is_img2img)
        self.paste_field_names = [key for _, key in self.infotext_fields]
        return components

    # Every hook below runs under guard.hook: with AnimateDiff enabled, any
    # exception fails the generation (the WebUI would log it and go on).
    @guard.hook("before_process", requested=_asks_for_animatediff)
    def before_process(self, p, *args):
        params = from_script_args(args, warn=lambda msg: logger.warning("%s", msg))
        params = xyz.with_axis_values(p, params)
        if not params.enable:
            motion_lora.note_unused(p.prompt)
            return
        guard.mark_enabled(p)
        params = inputs.checked(params)
        current = run.prepare(p, params, self.is_img2img, inputs.open_sources(params, p, limit=inputs.limit(params)))
        travel.prepare(p, current, travel.method(params))

    @guard.hook("process")
    def process(self, p, *args):
        current = run.get(p)
        if current is None:
            return
        run.arm(p, current)
        travel.apply(p, current)

    @guard.hook("after_extra_networks_activate")
    def after_extra_networks_activate(self, p, *args, **kwargs):
        # Also without AnimateDiff: the official v3 adapter works like its re-saved twin.
        motion_lora.fill_official_adapters()

    @guard.hook("process_before_every_sampling")
    def process_before_every_sampling(self, p, *args, **kwargs):
        # Forge's hook (A1111 has none), inside p.sample, on each sampling's fresh UNet patcher.
        current = run.get(p)
        if current is not None and current.model is not None:
            run.bind_for_sampling(p, current)

    @guard.hook("before_process_batch")
    def before_process_batch(self, p, *args, **kwargs):
        current = run.get(p)
        if current is None:
            return
        run.reschedule_noise(p, current)
        if self.is_img2img and getattr(p, "init_latent", None) is not None:
            # img2img batch: each frame has its own init image, nothing to fade.
            run.start_img2img_batch(p, current, fade=not i2ibatch.is_batch(p))

    @guard.hook("postprocess_batch")
    def postprocess_batch(self, p, *args, **kwargs):
        current = run.get(p)
        if current is not None:
            run.note_batch(current, kwargs.get("batch_number", 0))
            travel.restore(p, current)

    @guard.hook("postprocess")
    def postprocess(self, p, res, *args):
        current = run.get(p)
        failure = None
        try:
            if current is not None and current.model is not None and res.images:
                failure = outputs.write(p, res, current)
                if failure is not None:
                    logger.error("%s", failure)
        finally:
            run.finish(p)
        if failure is not None:
            guard.fail(p, failure)


samplers.register()
cn_compat.register()  # before ControlNet's first lazy import, which happens at generation time
i2ibatch.install()
xyz.register()  # the WebUI's own scripts, the X/Y/Z plot among them, are loaded before extensions
script_callbacks.on_ui_settings(settings.register)
script_callbacks.on_app_started(api.register)
script_callbacks.on_infotext_pasted(ui.expand_pasted)
script_callbacks.on_cfg_denoiser(
    guard.callback("on_cfg_denoiser", lambda params: params.denoiser.p)(travel.on_cfg_denoiser))

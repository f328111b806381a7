"""The AnimateDiff accordion: one component per parameter, built from its
declaration (`motion_module.request.params.SPECS`), in PARAM_ORDER.

The WebUI passes component values to the script positionally, and the API
fills the same slots (`alwayson_scripts.AnimateDiff.args`), so the UI and the
API go through one parser. Hover hints come from the same declarations: they
are handed to `javascript/animatediff_hints.js` as JSON in a hidden element.
"""

import html
import json

import gradio as gr

from modules.ui_components import ToolButton

from ..motion_module.request import params as P
from ..motion_module.request.infotext import INFOTEXT_KEY, paste_field_names, paste_fields

from . import controlnet, host, inputs, models, settings, travel

REFRESH = "\U0001f504"
# Rows of the accordion (presentation only; what each control is comes from its Spec).
LAYOUT = (
    ("model",),
    ("enable", "format"),
    ("video_length", "videos_per_batch", "fps", "loop_number"),
    ("closed_loop", "batch_size", "stride", "overlap"),
    ("interp", "interp_x"),
    ("freenoise", "prompt_interp", "motion_scale"),
    ("freeinit_enable", "freeinit_filter", "freeinit_fast"),
    ("freeinit_iters", "freeinit_ds", "freeinit_dt"),
    ("deepcache_interval", "deepcache_depth", "deepcache_early"),
    ("video_source",),
    ("video_path", "mask_path"),
    ("latent_power", "latent_scale"),
    ("last_frame",),
    ("latent_power_last", "latent_scale_last"),
    ("request_id",),
)
# Controls that are not parameters.
BUTTON_HINTS = {
    "motion-module-refresh": "Scan the motion module folder again (after adding or removing files).",
    "unload": "Move the loaded motion module to the CPU to free VRAM; it goes back to the GPU on the next run.",
    "remove": "Remove the loaded motion module from memory (RAM and VRAM); it is read from disk again on the next "
              "run.",
}


def _elem(tab, suffix):
    return f"animatediff-{tab}-{suffix}"


def _sd_is_xl():
    """The loaded checkpoint's family, or None before one is loaded. Never
    `shared.sd_model`: reading it loads the checkpoint, which would hold up
    the UI's construction (and the WebUI's start) until it is in memory."""
    model = host.loaded_model()
    return bool(getattr(model, "is_sdxl", False)) if model is not None else None


def _model_choices():
    return gr.update(choices=models.available(_sd_is_xl()))


def _component(name, spec, tab):
    kind = spec.kind
    # A parameter backed by a setting starts at the setting's value; its
    # empty choice ("use the setting") is the API's, not the UI's.
    default = settings.opt(spec.setting) if spec.setting else P.default_of(name)
    common = dict(label=spec.label, elem_id=_elem(tab, spec.elem_suffix(name)))
    if spec.ui == "checkbox":
        return gr.Checkbox(value=default, **common)
    if spec.ui == "checkboxes":
        choices = [c for c in kind.choices if c != "Frame"]  # Frame is an API flag
        return gr.CheckboxGroup(choices=choices, value=default, **common)
    if spec.ui == "number":
        return gr.Number(value=default, precision=0, minimum=kind.low, **common)
    if spec.ui == "slider":
        return gr.Slider(minimum=kind.low, maximum=kind.high, step=spec.step, value=default, **common)
    if spec.ui == "radio":
        return gr.Radio(choices=[c for c in kind.choices if c], value=default, **common)
    if spec.ui == "video":
        return gr.Video(value=None, format="mp4", source="upload", **common)
    if spec.ui == "textbox":
        return gr.Textbox(value=default, **common)
    if spec.ui == "image":
        return gr.Image(type="pil", **common)
    if spec.ui == "hidden":
        return gr.Textbox(value=default, visible=False, elem_id=common["elem_id"])
    raise ValueError(f"no UI component for {name!r} (ui={spec.ui!r})")


def _model_dropdown(tab):
    choices = models.available(_sd_is_xl())
    # A str even before any file is there: the WebUI's paste converts a pasted name to the type of the
    # initial value, and gives up on None. "" runs the first file, as over the API.
    model = gr.Dropdown(choices=choices, value=choices[0] if choices else "", label=P.SPECS["model"].label,
                        type="value", elem_id=_elem(tab, P.SPECS["model"].elem_suffix("model")))
    refresh = ToolButton(value=REFRESH, elem_id=_elem(tab, "motion-module-refresh"))
    refresh.click(_model_choices, inputs=[], outputs=[model])
    # Listed again whenever the list is opened: it follows checkpoint switches
    # (SD1.5 <-> SDXL) and changes of the model folder without the button.
    model.focus(_model_choices, inputs=[], outputs=[model])
    return model


def hints_json() -> str:
    hints = {spec.elem_suffix(name): spec.hint for name, spec in P.SPECS.items()}
    return json.dumps({**hints, **BUTTON_HINTS})


def _travel_preview(prompt, video_length, batch_size):
    """How the prompt reads as prompt travel, so a typo shows before a long run."""
    try:
        params = P.AnimateDiffParams(enable=True, video_length=video_length, batch_size=batch_size)
        found = travel.parse(prompt, params.resolve())
    except ValueError as e:
        return f"⚠️ {html.escape(str(e).removeprefix('AnimateDiff: '))}"
    if found is None:
        return ""
    lines = found.describe(params.resolve().video_length).splitlines()
    return "**Prompt travel:**\n" + "\n".join(f"- {html.escape(line)}" for line in lines)


def build(is_img2img: bool, prompt_box=None):
    tab = "img2img" if is_img2img else "txt2img"
    by_name = {}
    with gr.Accordion("AnimateDiff", open=False, elem_id=_elem(tab, "accordion")):
        gr.HTML(f'<div class="animatediff-hints" hidden data-hints="{html.escape(hints_json())}"></div>')
        for row in LAYOUT:
            with gr.Row(visible=is_img2img or not P.SPECS[row[0]].img2img):
                for name in row:
                    spec = P.SPECS[name]
                    by_name[name] = _model_dropdown(tab) if spec.ui == "model" else _component(name, spec, tab)
            if row[0] == "video_path" and not controlnet.installed():
                gr.Markdown("ControlNet is not installed: Video source and Video path set only the number of "
                            "frames (and FPS). Install sd-webui-controlnet to control the frames with them.",
                            elem_id=_elem(tab, "controlnet-note"))
        by_name["video_source"].change(_on_video, inputs=[by_name["video_source"]],
                                       outputs=[by_name["video_length"], by_name["fps"]])
        preview = gr.Markdown("", elem_id=_elem(tab, "travel-preview"))
        if prompt_box is not None:
            inputs = [prompt_box, by_name["video_length"], by_name["batch_size"]]
            for source in inputs:
                source.change(_travel_preview, inputs=inputs, outputs=[preview])
        with gr.Row():
            unload = gr.Button("Move motion module to CPU", elem_id=_elem(tab, "unload"))
            remove = gr.Button("Remove motion module from memory", elem_id=_elem(tab, "remove"))
        status = gr.Markdown("", elem_id=_elem(tab, "memory-status"))
        unload.click(lambda: models.unload(to_cpu_only=True), inputs=[], outputs=[status])
        remove.click(lambda: models.unload(), inputs=[], outputs=[status])
    return [by_name[name] for name in P.PARAM_ORDER], by_name


def _on_video(path):
    if not path:
        return gr.update(), gr.update()
    frames, fps = inputs.video_info(path)
    return (gr.update(value=frames) if frames else gr.update()), (gr.update(value=round(fps)) if fps else gr.update())


def infotext_fields(by_name, is_img2img):
    """(component, key) pairs: pasting an infotext fills the AnimateDiff fields.
    `expand_pasted` splits our single infotext entry into these keys."""
    return [(by_name[name], f"AnimateDiff {name}") for name in paste_field_names(is_img2img) if name in by_name]


def expand_pasted(_infotext, params: dict):
    """on_infotext_pasted: `AnimateDiff: "k: v, ..."` -> `AnimateDiff k` entries."""
    value = params.get(INFOTEXT_KEY)
    if not isinstance(value, str):
        return
    for name, field_value in paste_fields(value, is_img2img=True).items():
        params[f"AnimateDiff {name}"] = field_value

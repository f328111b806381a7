"""Settings → AnimateDiff: registered from the declarations in
`motion_module.request.settings`, read back through them."""

import os

import gradio as gr

from modules import shared

from ..motion_module.request.settings import SETTINGS, value

EXTENSION_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL_FOLDER = os.path.join(EXTENSION_ROOT, "model")

_COMPONENTS = {"textbox": gr.Textbox, "password": gr.Textbox, "checkbox": gr.Checkbox, "checkboxes": gr.CheckboxGroup,
               "slider": gr.Slider, "dropdown": gr.Dropdown, "radio": gr.Radio}


def opt(key):
    """A setting's typed value (its default when unset or unusable)."""
    return value(shared.opts, key)


def model_folder() -> str:
    """Settings path, or <extension>/model when unset or empty."""
    return opt("animatediff_model_path") or DEFAULT_MODEL_FOLDER


def _component_args(setting) -> dict:
    kind = setting.kind
    if setting.ui == "slider":
        return {"minimum": kind.low, "maximum": kind.high, "step": 1}
    if setting.ui == "password":
        return {"type": "password"}
    if hasattr(kind, "choices"):
        return {"choices": list(kind.choices)}
    return {}


def register():
    for s in SETTINGS:
        info = shared.OptionInfo(s.default, s.label, _COMPONENTS[s.ui], _component_args(s), section=s.section)
        if s.needs_reload:
            info = info.needs_reload_ui()
        shared.opts.add_option(s.key, info)

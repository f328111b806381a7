"""The AnimateDiff accordion: one component per parameter, in PARAM_ORDER.

The WebUI passes component values to the script positionally, and the API
fills the same slots (`alwayson_scripts.AnimateDiff.args`), so the UI and the
API go through one parser (`motion_module.params.from_script_args`).
"""

import os

import gradio as gr

from modules import shared
from modules.ui_components import ToolButton

from motion_module import params as P

from . import models, settings

REFRESH = "\U0001f504"


def _elem(tab, suffix):
    return f"animatediff-{tab}-{suffix}"


def _sd_is_xl():
    model = getattr(shared, "sd_model", None)
    return bool(getattr(model, "is_sdxl", False)) if model is not None else None


def _video_info(path):
    """(frames, fps) of an uploaded source video, for auto frame count and FPS."""
    try:
        import cv2
        cap = cv2.VideoCapture(path)
        frames, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        return frames, fps
    except Exception:
        return 0, 0


def build(is_img2img: bool):
    tab = "img2img" if is_img2img else "txt2img"
    d = P.AnimateDiffParams()
    with gr.Accordion("AnimateDiff", open=False, elem_id=_elem(tab, "accordion")):
        with gr.Row():
            choices = models.available(_sd_is_xl())
            model = gr.Dropdown(choices=choices, value=choices[0] if choices else None, label="Motion module",
                                type="value", elem_id=_elem(tab, "motion-module"))
            refresh = ToolButton(value=REFRESH, elem_id=_elem(tab, "motion-module-refresh"))
            refresh.click(lambda: gr.update(choices=models.available(_sd_is_xl())), inputs=[], outputs=[model])
        with gr.Row():
            enable = gr.Checkbox(value=False, label="Enable AnimateDiff", elem_id=_elem(tab, "enable"))
            fmt = gr.CheckboxGroup(choices=list(settings.SAVE_FORMATS), value=settings.default_formats(),
                                   label="Save format", elem_id=_elem(tab, "save-format"))
        with gr.Row():
            video_length = gr.Number(value=d.video_length, precision=0, minimum=P.VIDEO_LENGTH_RANGE[0],
                                     label="Number of frames (0 = context batch size or source video)",
                                     elem_id=_elem(tab, "video-length"))
            fps = gr.Number(value=d.fps, precision=0, minimum=P.FPS_RANGE[0], label="FPS", elem_id=_elem(tab, "fps"))
            loop_number = gr.Number(value=d.loop_number, precision=0, minimum=0,
                                    label="Display loop number (0 = forever)", elem_id=_elem(tab, "loop-number"))
        with gr.Row():
            closed_loop = gr.Radio(choices=list(P.CLOSED_LOOP), value=d.closed_loop, label="Closed loop",
                                   elem_id=_elem(tab, "closed-loop"))
            batch_size = gr.Slider(minimum=P.BATCH_SIZE_RANGE[0], maximum=P.BATCH_SIZE_RANGE[1], step=1,
                                   value=d.batch_size, label="Context batch size", elem_id=_elem(tab, "batch-size"))
            stride = gr.Number(value=d.stride, precision=0, minimum=1, label="Stride", elem_id=_elem(tab, "stride"))
            overlap = gr.Number(value=d.overlap, precision=0, minimum=-1, label="Overlap (-1 = context / 4)",
                                elem_id=_elem(tab, "overlap"))
        with gr.Row():
            interp = gr.Radio(choices=list(P.INTERP), value=d.interp, label="Frame interpolation",
                              elem_id=_elem(tab, "interp-choice"))
            interp_x = gr.Number(value=d.interp_x, precision=0, minimum=P.INTERP_X_RANGE[0], label="Interp X",
                                 elem_id=_elem(tab, "interp-x"))
        video_source = gr.Video(value=None, label="Video source", format="mp4", source="upload",
                                elem_id=_elem(tab, "video-source"))
        video_path = gr.Textbox(value="", label="Video path (folder of frames)", elem_id=_elem(tab, "video-path"))
        video_source.change(_on_video, inputs=[video_source], outputs=[video_length, fps])
        with gr.Group(visible=is_img2img):
            with gr.Row():
                latent_power = gr.Slider(minimum=0.1, maximum=10, step=0.1, value=d.latent_power,
                                         label="Latent power", elem_id=_elem(tab, "latent-power"))
                latent_scale = gr.Slider(minimum=1, maximum=128, step=1, value=d.latent_scale,
                                         label="Latent scale", elem_id=_elem(tab, "latent-scale"))
            last_frame = gr.Image(label="Optional last frame (leave empty to not use)", type="pil",
                                  elem_id=_elem(tab, "last-frame"))
            with gr.Row():
                latent_power_last = gr.Slider(minimum=0.1, maximum=10, step=0.1, value=d.latent_power_last,
                                              label="Latent power for the last frame",
                                              elem_id=_elem(tab, "latent-power-last"))
                latent_scale_last = gr.Slider(minimum=1, maximum=128, step=1, value=d.latent_scale_last,
                                              label="Latent scale for the last frame",
                                              elem_id=_elem(tab, "latent-scale-last"))
        request_id = gr.Textbox(value="", visible=False, elem_id=_elem(tab, "request-id"))
        with gr.Row():
            unload = gr.Button("Move motion module to CPU", elem_id=_elem(tab, "unload"))
            remove = gr.Button("Remove motion module from memory", elem_id=_elem(tab, "remove"))
            unload.click(lambda: models.unload(to_cpu_only=True))
            remove.click(lambda: models.unload())
    by_name = dict(model=model, format=fmt, enable=enable, video_length=video_length, fps=fps,
                   loop_number=loop_number, closed_loop=closed_loop, batch_size=batch_size, stride=stride,
                   overlap=overlap, interp=interp, interp_x=interp_x, video_source=video_source,
                   video_path=video_path, latent_power=latent_power, latent_scale=latent_scale,
                   last_frame=last_frame, latent_power_last=latent_power_last,
                   latent_scale_last=latent_scale_last, request_id=request_id)
    return [by_name[name] for name in P.PARAM_ORDER], by_name


def _on_video(path):
    if not path:
        return gr.update(), gr.update()
    frames, fps = _video_info(path)
    return (gr.update(value=frames) if frames else gr.update()), (gr.update(value=round(fps)) if fps else gr.update())


def infotext_fields(by_name, is_img2img):
    """(component, key) pairs: pasting an infotext fills the AnimateDiff fields.
    `expand_pasted` splits our single infotext entry into these keys."""
    from motion_module.infotext import paste_field_names
    return [(by_name[name], f"AnimateDiff {name}") for name in paste_field_names(is_img2img) if name in by_name]


def expand_pasted(_infotext, params: dict):
    """on_infotext_pasted: `AnimateDiff: "k: v, ..."` -> `AnimateDiff k` entries."""
    from motion_module.infotext import INFOTEXT_KEY, paste_fields

    value = params.get(INFOTEXT_KEY)
    if not isinstance(value, str):
        return
    for name, field_value in paste_fields(value, is_img2img=True).items():
        params[f"AnimateDiff {name}"] = field_value


def source_frame_count(params) -> int | None:
    """Frames in the video source / frames folder, for the automatic frame count."""
    if params.video_source:
        frames, _ = _video_info(params.video_source)
        return frames or None
    if params.video_path and os.path.isdir(params.video_path):
        exts = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
        return len([f for f in os.listdir(params.video_path) if f.lower().endswith(exts)]) or None
    return None

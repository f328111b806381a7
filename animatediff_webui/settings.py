"""Settings → AnimateDiff: the reference extension's keys and defaults, plus ours.

Keys keep the reference names (including the misspelled S3 bucket key) so that
users' saved settings keep working.
"""

import os

import gradio as gr

from modules import shared

from motion_module.context import FUSE_CHOICES
from motion_module.params import OUTPUT_FORMATS

EXTENSION_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL_FOLDER = os.path.join(EXTENSION_ROOT, "model")
SAVE_FORMATS = tuple(OUTPUT_FORMATS) + ("TXT",)
MP4_PRESETS = ["", "veryslow", "slower", "slow", "medium", "fast", "faster", "veryfast", "superfast", "ultrafast"]
MP4_TUNES = ["", "film", "animation", "grain"]


def opt(key, default=None):
    return getattr(shared.opts, key, default)


def model_folder() -> str:
    """Settings path, or <extension>/model when unset or empty."""
    return opt("animatediff_model_path") or DEFAULT_MODEL_FOLDER


def default_formats():
    return list(opt("animatediff_default_save_formats", ["GIF", "PNG"]) or ["GIF", "PNG"])


def register():
    section = ("animatediff", "AnimateDiff")
    aws = ("animatediff_aws", "AnimateDiff AWS")
    options = {
        "animatediff_model_path": shared.OptionInfo(
            None, "Path to save AnimateDiff motion modules (empty: <extension>/model)", gr.Textbox, section=section),
        "animatediff_default_save_formats": shared.OptionInfo(
            ["GIF", "PNG"], "Default Save Formats", gr.CheckboxGroup, {"choices": list(SAVE_FORMATS)},
            section=section).needs_reload_ui(),
        "animatediff_optimize_gif_palette": shared.OptionInfo(
            False, "Calculate the optimal GIF palette (one global palette, no dithering between frames)",
            gr.Checkbox, section=section),
        "animatediff_optimize_gif_gifsicle": shared.OptionInfo(
            False, "Optimize GIFs with gifsicle (needs the gifsicle binary)", gr.Checkbox, section=section),
        "animatediff_mp4_crf": shared.OptionInfo(
            23, "MP4 Quality (CRF, lower is better)", gr.Slider, {"minimum": 0, "maximum": 51, "step": 1},
            section=section),
        "animatediff_mp4_preset": shared.OptionInfo(
            "", "MP4 Encoding Preset", gr.Dropdown, {"choices": MP4_PRESETS}, section=section),
        "animatediff_mp4_tune": shared.OptionInfo(
            "", "MP4 Tune encoding for content type", gr.Dropdown, {"choices": MP4_TUNES}, section=section),
        "animatediff_webp_quality": shared.OptionInfo(
            80, "WebP Quality (if lossless is on, the compression effort)", gr.Slider,
            {"minimum": 1, "maximum": 100, "step": 1}, section=section),
        "animatediff_webp_lossless": shared.OptionInfo(
            False, "Save WebP in lossless format", gr.Checkbox, section=section),
        "animatediff_save_to_custom": shared.OptionInfo(
            False, "Save frames to outputs/{txt2img,img2img}-images/AnimateDiff/{date}/{video name}/ "
                   "instead of the usual sample folder", gr.Checkbox, section=section),
        "animatediff_context_fuse": shared.OptionInfo(
            "pyramid", "How overlapping context windows are combined (pyramid: weighted to window centres; "
                       "flat: plain average; last: the reference extension's overwrite)",
            gr.Radio, {"choices": list(FUSE_CHOICES)}, section=section),
        "animatediff_s3_enable": shared.OptionInfo(
            False, "Enable to Store file in object storage that supports the s3 protocol", gr.Checkbox,
            section=aws),
        "animatediff_s3_host": shared.OptionInfo(None, "S3 protocol host", gr.Textbox, section=aws),
        "animatediff_s3_port": shared.OptionInfo(None, "S3 protocol port", gr.Textbox, section=aws),
        "animatediff_s3_access_key": shared.OptionInfo(None, "S3 protocol access_key", gr.Textbox, section=aws),
        "animatediff_s3_secret_key": shared.OptionInfo(
            None, "S3 protocol secret_key", gr.Textbox, {"type": "password"}, section=aws),
        "animatediff_s3_storge_bucket": shared.OptionInfo(None, "Bucket for file storage", gr.Textbox, section=aws),
    }
    for key, info in options.items():
        shared.opts.add_option(key, info)

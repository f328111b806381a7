"""The extension's WebUI settings (``animatediff_*`` keys), declared once.

The writers' own settings are declared beside ``VideoOptions``
(``video/options.py``); the rest are here, and ``SETTINGS`` lists them all in
the order the Settings page shows them. The WebUI glue registers each one
from its declaration and reads values through ``value``. Keys keep the
reference extension's names (including the misspelled S3 bucket key) so
users' ``config.json`` files keep working.
"""
from __future__ import annotations

import logging
from typing import Any

from ..context.fuse import FUSES
from ..prompt_travel import DEFAULT_INTERPOLATION, INTERPOLATIONS
from ..values import Bool, Choice, ChoiceList, Setting, Text
from ..video.formats import FILE_FORMATS
from ..video.options import WRITER_SETTINGS

logger = logging.getLogger(__name__)

SETTINGS: tuple[Setting, ...] = (
    Setting("animatediff_model_path", None, Text(), "Path to save AnimateDiff motion modules (empty: <extension>/model)",
            "Folder of the motion modules. Subfolders are fine.", "textbox",
            readme_default="empty (= `<extension>/model`)"),
    Setting("animatediff_default_save_formats", ["GIF", "PNG"], ChoiceList(tuple(FILE_FORMATS)), "Default Save Formats",
            "Default of **Save format**. Needs a UI reload.", "checkboxes", needs_reload=True),
    *(s for s in WRITER_SETTINGS if s.section[0] == "animatediff"),
    Setting("animatediff_save_to_custom", False, Bool(),
            "Save frames to outputs/{txt2img,img2img}-images/AnimateDiff/{date}/{video name}/ instead of the usual "
            "sample folder",
            "Save PNG frames to `…/AnimateDiff/{date}/{video name}/` instead of the WebUI's usual image folder.",
            "checkbox"),
    Setting("animatediff_save_grid", False, Bool(),
            "Also save a grid image of each video's frames (when the WebUI saves grids)",
            "Save the WebUI's grid image of a video's frames as well (only when the WebUI's own grid saving is "
            "on). Off: a video is saved as a video, with no grid beside it.", "checkbox"),
    Setting("animatediff_prompt_interp", DEFAULT_INTERPOLATION, Choice(INTERPOLATIONS),
            "Prompt travel: how frames between keyframes mix the keyframes' conditionings",
            "Prompt travel between keyframes: `slerp` (spherical) or `lerp` (linear); the API key `prompt_interp` "
            "overrides it per request.", "radio"),
    Setting("animatediff_context_fuse", "pyramid", Choice(tuple(FUSES)),
            "How overlapping context windows are combined (pyramid: weighted to window centres; flat: plain "
            "average; last: the reference extension's overwrite)",
            "How overlapping context windows are combined: " + ", ".join(f"`{name}`" for name in FUSES)
            + " ([Long videos](usage.md#long-videos-context-windows)). New in this extension.", "radio"),
    Setting("animatediff_allowed_roots", "", Text(),
            "Folders that Video source, Video path and Mask path may read from (separate with ; or new lines; "
            "empty: any folder on the server)",
            "Folders on the server that `video_source`, `video_path` and `mask_path` may name (`;` or new lines "
            "between them). Empty: any path, as in the reference extension. Set it on a shared or public server; "
            "symlinks and `..` are resolved before the check, so they cannot leave a root.", "textbox"),
    *(s for s in WRITER_SETTINGS if s.section[0] != "animatediff"),
)
BY_KEY = {s.key: s for s in SETTINGS}


def value(source: Any, key: str) -> Any:
    """One setting's typed value from ``shared.opts`` (or a mapping).

    An unusable stored value falls back to the default with a warning: a bad
    line in config.json must not stop every generation.
    """
    setting = BY_KEY[key]
    try:
        return setting.read(source)
    except ValueError as e:
        logger.warning("AnimateDiff: %s; using the default %r", e, setting.default)
        return setting.default

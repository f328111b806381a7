"""The AnimateDiff axes of the WebUI's X/Y/Z plot, derived from the parameters.

Each axis is one parameter: its label, value type and choices come from the
parameter's declaration, and its values are parsed and range-checked by the
same coercion as every other way in (``coerce_field``), before the grid
starts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from ..values import Bool, Choice, Float, Int
from .params import SPECS, coerce_field

AXES = ("model", "video_length", "fps", "batch_size", "stride", "overlap", "closed_loop", "motion_scale",
        "freeinit_enable", "prompt_interp", "deepcache_interval", "deepcache_depth")
LABEL_PREFIX = "[AnimateDiff] "


@dataclass(frozen=True)
class Axis:
    name: str
    label: str
    type: type  # what the X/Y/Z plot converts each typed value with (int and float get its range syntax)
    choices: tuple[str, ...] | None  # None: typed freely (the model list is filled in by the WebUI glue)


def _label(name: str) -> str:
    # "Number of frames (0 = context batch size or source video)" -> "Number of frames"
    return LABEL_PREFIX + re.sub(r"\s*\(.*\)$", "", SPECS[name].label)


def axis(name: str) -> Axis:
    kind = SPECS[name].kind
    if isinstance(kind, Int):
        return Axis(name, _label(name), int, None)
    if isinstance(kind, Float):
        return Axis(name, _label(name), float, None)
    if isinstance(kind, Bool):
        return Axis(name, _label(name), str, ("True", "False"))
    if isinstance(kind, Choice):
        return Axis(name, _label(name), str, tuple(c for c in kind.choices if c))
    return Axis(name, _label(name), str, None)


def parse_values(name: str, values: Sequence[Any]) -> list[Any]:
    """The axis's values as the parameter takes them; ParamError naming the
    parameter for any value out of range, before a single cell runs. The
    overlap's bound depends on the context batch size and is checked per cell."""
    return [coerce_field(name, value, check_range=not SPECS[name].below) for value in values]

"""Per-generation AnimateDiff parameters: parsing, validation and derived values.

This module is WebUI-independent on purpose (no ``modules``/``gradio`` import):
the same rules then apply to the UI, the HTTP API, infotext pasting and the
tests, and they can be exercised without a running WebUI.

The three ways parameters arrive:

* the UI: one component per parameter, handed to the script positionally in
  ``PARAM_ORDER``;
* the API: ``alwayson_scripts: {"AnimateDiff": {"args": [{...}]}}`` - a dict in
  the first slot (the other slots keep their UI defaults);
* the ``webuiapi`` PyPI client, which sends ``{"args": [False]}`` with every
  txt2img call, i.e. a bare bool in the model slot.

``from_script_args`` tells these apart; every path ends in
``AnimateDiffParams.validate``, the single place where values are checked.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

logger = logging.getLogger(__name__)

Warn = Callable[[str], Any]

# --------------------------------------------------------------------------
# Choices and ranges (public: the UI builds its components from these).
# --------------------------------------------------------------------------

FORMATS = ("GIF", "MP4", "WEBP", "WEBM", "PNG", "TXT", "Frame")
# At least one of these must be chosen, otherwise the run produces nothing.
OUTPUT_FORMATS = ("GIF", "MP4", "WEBP", "WEBM", "PNG")
DEFAULT_FORMAT = ("GIF", "PNG")
CLOSED_LOOP = ("N", "R-P", "R+P", "A")
# "Linear" is our built-in cross-fade, used when the FILM model is missing.
INTERP = ("Off", "FILM", "Linear")

VIDEO_LENGTH_RANGE = (0, 10000)  # 0 = automatic
FPS_RANGE = (1, 240)
LOOP_NUMBER_RANGE = (0, 10000)  # 0 = loop forever
# The motion module's own position-encoding limit is checked where the
# module is loaded; this is only a sanity bound.
BATCH_SIZE_RANGE = (1, 64)
STRIDE_RANGE = (1, 16)
OVERLAP_MIN = -1  # -1 = automatic; the upper bound is batch_size - 1
INTERP_X_RANGE = (2, 100)
LATENT_POWER_RANGE = (0.1, 10.0)
LATENT_SCALE_RANGE = (1.0, 128.0)
REQUEST_ID_MAX_LEN = 128
# request_id becomes part of output file names: keep it one safe path
# component on every OS.
REQUEST_ID_FORBIDDEN = frozenset('/\\:*?"<>|')

# Positional order of the UI components (and of positional API args).
PARAM_ORDER = (
    "model",
    "format",
    "enable",
    "video_length",
    "fps",
    "loop_number",
    "closed_loop",
    "batch_size",
    "stride",
    "overlap",
    "interp",
    "interp_x",
    "video_source",
    "video_path",
    "latent_power",
    "latent_scale",
    "last_frame",
    "latent_power_last",
    "latent_scale_last",
    "request_id",
)

# Other spellings users send for the same keys (UI labels, elem_id suffixes
# such as "video-length", older client code). Keys are compared after
# ``_normalise_key``.
KEY_ALIASES = {
    "enabled": "enable",
    "motion_module": "model",
    "formats": "format",
    "save_format": "format",
    "number_of_frames": "video_length",
    "display_loop_number": "loop_number",
    "context_batch_size": "batch_size",
    "interp_choice": "interp",
    "frame_interpolation": "interp",
}


class ParamError(ValueError):
    """A parameter value was rejected; ``field`` names the offending key."""

    def __init__(self, field: str, message: str):
        super().__init__(f"AnimateDiff: {message}")
        self.field = field


# --------------------------------------------------------------------------
# Primitive coercions. They raise plain ValueError; callers turn that into a
# ParamError that names the field and the allowed values.
# --------------------------------------------------------------------------


def parse_int(value: Any) -> int:
    """int, integral float (16.0) or numeric string ("16") -> int.

    Gradio hands Number values as floats, so 16.0 must pass, but 16.5 and
    bools must not (True silently becoming 1 frame hides a wrong slot).
    """
    if isinstance(value, bool):
        raise ValueError("bool is not an integer")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _integral_float(float(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            return _integral_float(float(text))
    raise ValueError(f"{type(value).__name__} is not an integer")


def _integral_float(number: float) -> int:
    if not number.is_integer():  # also rejects nan/inf
        raise ValueError("not an integral number")
    return int(number)


def parse_float(value: Any) -> float:
    """int, float or numeric string -> finite float (bools rejected)."""
    if isinstance(value, bool):
        raise ValueError("bool is not a number")
    if isinstance(value, numbers.Real):
        number = float(value)
    elif isinstance(value, str):
        number = float(value.strip())
    else:
        raise ValueError(f"{type(value).__name__} is not a number")
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


_TRUE_WORDS = ("true", "1")
_FALSE_WORDS = ("false", "0")


def parse_bool(value: Any) -> bool:
    """bool, 0/1, or "true"/"false"/"1"/"0" (any case) -> bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Real) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError(f"{value!r} is not a boolean")


def _parse_text(value: Any, none_ok: bool) -> str:
    if value is None and none_ok:
        return ""
    if isinstance(value, str):
        return value
    raise ValueError(f"{type(value).__name__} is not a string")


def _parse_choice(value: Any, choices: tuple[str, ...]) -> str:
    # Case-insensitive because API users type "r+p", "film", "off".
    if isinstance(value, str):
        wanted = value.strip().casefold()
        for choice in choices:
            if choice.casefold() == wanted:
                return choice
    raise ValueError(f"{value!r} is not one of {choices}")


def _parse_formats(value: Any) -> list[str]:
    """Single string, comma-separated string or collection -> canonical list.

    Returned in FORMATS order without duplicates, so equal selections compare
    equal whatever order or case the client used.
    """
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        raise ValueError(f"{type(value).__name__} is not a list of formats")
    chosen = {_parse_choice(item, FORMATS) for item in items if not _is_blank(item)}
    return [name for name in FORMATS if name in chosen]


def _is_blank(item: Any) -> bool:
    return isinstance(item, str) and not item.strip()


def _parse_video_source(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        return value or None  # gradio clears the component to ""
    raise ValueError(f"{type(value).__name__} is not a video path")


def _parse_image(value: Any) -> object:
    """None, base64/data-URL string, or an image object (kept as is).

    Decoding happens where the image is used; here we only refuse values that
    can never be an image, without importing PIL (duck typing: PIL images have
    ``size`` and ``mode``, numpy arrays have ``shape``).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if hasattr(value, "size") and hasattr(value, "mode"):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    raise ValueError(f"{type(value).__name__} is not an image")


# --------------------------------------------------------------------------
# Per-field rules: one table, used by validate() and by the infotext parser.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    kind: str  # int | float | bool | text | choice | formats | video | image | request_id
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    none_ok: bool = False  # None is read as "" (text fields only)

    def parse(self, value: Any) -> Any:
        """Type coercion only (no range check)."""
        if self.kind == "int":
            return parse_int(value)
        if self.kind == "float":
            return parse_float(value)
        if self.kind == "bool":
            return parse_bool(value)
        if self.kind in ("text", "request_id"):
            return _parse_text(value, self.none_ok)
        if self.kind == "choice":
            return _parse_choice(value, self.choices)
        if self.kind == "formats":
            return _parse_formats(value)
        if self.kind == "video":
            return _parse_video_source(value)
        if self.kind == "image":
            return _parse_image(value)
        raise AssertionError(self.kind)

    def in_range(self, value: Any) -> bool:
        if self.kind in ("int", "float"):
            return self.low <= value <= self.high
        if self.kind == "formats":
            return any(name in OUTPUT_FORMATS for name in value)
        if self.kind == "request_id":
            return _safe_request_id(value)
        return True

    def describe(self) -> str:
        """The "must be ..." part of error messages."""
        if self.kind == "int":
            return f"an integer between {self.low} and {self.high}"
        if self.kind == "float":
            return f"a number between {self.low:g} and {self.high:g}"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "formats":
            return (
                "a list of formats from " + ", ".join(FORMATS)
                + " with at least one of " + ", ".join(OUTPUT_FORMATS)
            )
        if self.kind == "request_id":
            return (
                f"a string of at most {REQUEST_ID_MAX_LEN} characters without "
                "control characters or any of " + "".join(sorted(REQUEST_ID_FORBIDDEN))
            )
        if self.kind == "video":
            return "a video file path or None"
        if self.kind == "image":
            return "an image (PIL image or base64 string) or None"
        return "a string"


def _safe_request_id(value: str) -> bool:
    if len(value) > REQUEST_ID_MAX_LEN:
        return False
    return not any(ch in REQUEST_ID_FORBIDDEN or ord(ch) < 32 or ord(ch) == 127 for ch in value)


RULES: dict[str, _Rule] = {
    "model": _Rule("text", none_ok=True),
    "format": _Rule("formats"),
    "enable": _Rule("bool"),
    "video_length": _Rule("int", *VIDEO_LENGTH_RANGE),
    "fps": _Rule("int", *FPS_RANGE),
    "loop_number": _Rule("int", *LOOP_NUMBER_RANGE),
    "closed_loop": _Rule("choice", choices=CLOSED_LOOP),
    "batch_size": _Rule("int", *BATCH_SIZE_RANGE),
    "stride": _Rule("int", *STRIDE_RANGE),
    # Real upper bound (batch_size - 1) is a cross-field check in validate().
    "overlap": _Rule("int", OVERLAP_MIN, BATCH_SIZE_RANGE[1] - 1),
    "interp": _Rule("choice", choices=INTERP),
    "interp_x": _Rule("int", *INTERP_X_RANGE),
    "video_source": _Rule("video"),
    # None accepted for the optional text fields: API clients send null.
    "video_path": _Rule("text", none_ok=True),
    "latent_power": _Rule("float", *LATENT_POWER_RANGE),
    "latent_scale": _Rule("float", *LATENT_SCALE_RANGE),
    "last_frame": _Rule("image"),
    "latent_power_last": _Rule("float", *LATENT_POWER_RANGE),
    "latent_scale_last": _Rule("float", *LATENT_SCALE_RANGE),
    "request_id": _Rule("request_id", none_ok=True),
}


def _show(value: Any) -> str:
    """repr() for messages, shortened so a base64 image cannot flood a log."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _invalid(name: str, value: Any) -> ParamError:
    return ParamError(name, f"'{name}' must be {RULES[name].describe()}, got {_show(value)}")


def coerce_field(name: str, value: Any, *, check_range: bool = True) -> Any:
    """Coerce one parameter value to its canonical type (and check its range).

    Shared by validate() and the infotext parser so both accept exactly the
    same spellings. Cross-field limits (overlap < batch_size) are not checked
    here.
    """
    rule = RULES.get(name)
    if rule is None:
        raise ParamError(name, f"unknown parameter '{name}'")
    try:
        parsed = rule.parse(value)
    except (ValueError, TypeError, OverflowError):
        raise _invalid(name, value) from None
    if check_range and not rule.in_range(parsed):
        raise _invalid(name, value)
    return parsed


# --------------------------------------------------------------------------
# The parameter object.
# --------------------------------------------------------------------------


@dataclass
class AnimateDiffParams:
    """Everything one AnimateDiff generation needs from the user.

    Field names are the reference extension's API keys, so existing API
    scripts keep working.
    """

    model: str = ""
    format: list[str] = field(default_factory=lambda: list(DEFAULT_FORMAT))
    enable: bool = False
    video_length: int = 0
    fps: int = 8
    loop_number: int = 0
    closed_loop: str = "R-P"
    batch_size: int = 16  # context batch size: frames per motion-module window
    stride: int = 1
    overlap: int = -1
    interp: str = "Off"
    interp_x: int = 10
    video_source: str | None = None
    video_path: str = ""
    latent_power: float = 1.0
    latent_scale: float = 32.0
    last_frame: object = None  # PIL image, base64 string or None
    latent_power_last: float = 1.0
    latent_scale_last: float = 32.0
    request_id: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, strict: bool | None = None) -> AnimateDiffParams:
        """Normalise every field in place; raise ParamError when invalid.

        ``strict`` defaults to ``enable``: a disabled extension must never
        block a generation, so for disabled params types are coerced
        best-effort (unusable values fall back to defaults) and ranges are
        not checked. ``enable`` itself is always checked strictly - we must
        know whether to run.
        """
        self.enable = coerce_field("enable", self.enable)
        if strict is None:
            strict = self.enable
        for name in PARAM_ORDER:
            if name != "enable":
                setattr(self, name, self._coerced(name, strict))
        if strict:
            self._check_overlap()
        return self

    def _coerced(self, name: str, strict: bool) -> Any:
        value = getattr(self, name)
        try:
            return coerce_field(name, value, check_range=strict)
        except ParamError:
            if strict:
                raise
            logger.debug("AnimateDiff disabled: ignoring unusable %s=%s", name, _show(value))
            return _default_of(name)

    def _check_overlap(self) -> None:
        # Windows advance by batch_size - overlap frames; overlap >= batch_size
        # would make that step zero or negative (reference: crash or black video).
        if self.overlap > self.batch_size - 1:
            raise ParamError(
                "overlap",
                f"'overlap' must be an integer between {OVERLAP_MIN} and "
                f"{self.batch_size - 1} (context batch size - 1), got {_show(self.overlap)}",
            )

    def resolve(self, source_frames: int | None = None) -> ResolvedParams:
        """Derived per-run values; see ResolvedParams."""
        self.validate(strict=True)
        return ResolvedParams.from_params(self, source_frames)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe echo in API key form.

        ``last_frame`` is left out: it may be a multi-megabyte image, and
        leaving it out keeps ``from_dict(p.to_dict())`` a faithful copy of
        everything else.
        """
        out = {name: getattr(self, name) for name in PARAM_ORDER if name != "last_frame"}
        out["format"] = list(self.format)
        return out


def _default_of(name: str) -> Any:
    spec = AnimateDiffParams.__dataclass_fields__[name]
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return spec.default


# --------------------------------------------------------------------------
# Derived values.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedParams:
    """Values computed once per generation from validated params.

    * video_length: frames to generate (0 resolved to the source frame count,
      or to batch_size without a source).
    * context_length: frames per motion-module window, never more than the
      video (so short videos need no padding).
    * overlap: -1 resolved to context_length // 4, always < context_length.
    * webui_batch_size: the WebUI batch size to use. Exactly video_length -
      padding up to batch_size was the reference's bug #213.
    * ping_pong: closed_loop 'A' on a single-window clip appends the reversed
      frames at output time.
    * windowed: more frames than one window, i.e. the context scheduler runs.
    """

    video_length: int
    context_length: int
    overlap: int
    stride: int
    closed_loop: str
    webui_batch_size: int
    ping_pong: bool
    windowed: bool
    wants_frames: bool
    file_formats: tuple[str, ...]

    @classmethod
    def from_params(cls, params: AnimateDiffParams, source_frames: int | None = None) -> ResolvedParams:
        video_length = _resolve_video_length(params, source_frames)
        context_length = min(params.batch_size, video_length)
        return cls(
            video_length=video_length,
            context_length=context_length,
            overlap=_resolve_overlap(params.overlap, context_length),
            stride=params.stride,
            closed_loop=params.closed_loop,
            webui_batch_size=video_length,
            ping_pong=params.closed_loop == "A" and video_length <= params.batch_size,
            windowed=video_length > context_length,
            wants_frames="Frame" in params.format,
            file_formats=tuple(name for name in params.format if name != "Frame"),
        )


def _resolve_video_length(params: AnimateDiffParams, source_frames: int | None) -> int:
    if source_frames is None:
        return params.video_length or params.batch_size
    try:
        available = parse_int(source_frames)
    except ValueError:
        raise ParamError("video_source", f"source frame count must be an integer, got {_show(source_frames)}") from None
    if available < 1:
        raise ParamError("video_source", "the video source has no frames")
    # A source caps the length: frames past its end would have no control image.
    length = min(params.video_length, available) if params.video_length else available
    if length > VIDEO_LENGTH_RANGE[1]:
        raise ParamError(
            "video_length",
            f"the video source has {available} frames, more than the maximum of "
            f"{VIDEO_LENGTH_RANGE[1]}; set 'video_length' to use only the first frames",
        )
    return length


def _resolve_overlap(overlap: int, context_length: int) -> int:
    if overlap == -1:
        overlap = context_length // 4
    return max(0, min(overlap, context_length - 1))


# --------------------------------------------------------------------------
# Entry points.
# --------------------------------------------------------------------------


def _normalise_key(key: str) -> str:
    return key.strip().lower().replace("-", "_").replace(" ", "_")


def _canonical_key(key: Any) -> str | None:
    if not isinstance(key, str):
        return None
    name = _normalise_key(key)
    if name in RULES:
        return name
    return KEY_ALIASES.get(name)


def from_dict(d: Mapping[str, Any], warn: Warn | None = None) -> AnimateDiffParams:
    """API dict form -> validated params.

    Unknown keys are ignored with one warning (the reference raised
    TypeError, which broke clients whenever keys were added or renamed).
    An exact key wins over an alias of the same parameter.
    """
    warn = logger.warning if warn is None else warn
    if not isinstance(d, Mapping):
        raise ParamError("args", f"arguments must be a dict, got {type(d).__name__}")
    values: dict[str, Any] = {}
    aliased: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in d.items():
        name = _canonical_key(key)
        if name is None:
            unknown.append(repr(key))
        elif name == key:
            values[name] = value
        else:
            aliased.setdefault(name, value)
    for name, value in aliased.items():
        values.setdefault(name, value)
    if unknown:
        warn(f"AnimateDiff: ignoring unknown parameter(s): {', '.join(unknown)}")
    if values and "enable" not in values:
        warn("AnimateDiff: no 'enable' key given, so AnimateDiff stays disabled; add \"enable\": true")
    return AnimateDiffParams(**values)


def from_script_args(args: Sequence[Any] | None, warn: Warn | None = None) -> AnimateDiffParams:
    """What the WebUI passes to the script -> validated params.

    * ``args[0]`` a dict: API dict form; the other slots are the UI defaults
      the WebUI filled in and are ignored.
    * ``args[0]`` an AnimateDiffParams: a revalidated copy.
    * ``args[0]`` a bool: the ``webuiapi`` client's ``[False]`` landed in the
      model slot. It is the enable flag; the other slots are read positionally.
    * otherwise: positional values in PARAM_ORDER.
    """
    warn = logger.warning if warn is None else warn
    args = list(args or ())
    if not args:
        return AnimateDiffParams()
    head = args[0]
    if isinstance(head, Mapping):
        return from_dict(head, warn)
    if isinstance(head, AnimateDiffParams):
        return dataclasses.replace(head)
    if isinstance(head, bool):
        values = _positional(["", *args[1:]], warn)
        values["enable"] = head  # the enable slot holds only the UI default
        return AnimateDiffParams(**values)
    return AnimateDiffParams(**_positional(args, warn))


def _positional(args: list[Any], warn: Warn) -> dict[str, Any]:
    if len(args) > len(PARAM_ORDER):
        warn(f"AnimateDiff: ignoring {len(args) - len(PARAM_ORDER)} extra positional argument(s)")
    return dict(zip(PARAM_ORDER, args))

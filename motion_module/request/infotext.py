"""The ``AnimateDiff`` infotext entry: writing it and reading it back.

Format (compatible with the reference extension): ``key: value`` pairs joined
by ``", "``, for example::

    enable: True, model: mm_sd_v15_v2.ckpt, video_length: 16, fps: 8, ...

The WebUI stores this whole string as the value of the ``AnimateDiff`` entry
and, because it contains ", " and ": ", wraps it in double quotes with JSON
escaping; its paste parser undoes that before we see the value.

Escaping inside our value: string values are percent-encoded for just the
characters that would break the pair syntax - ``%`` ``,`` ``:`` ``"`` ``\\``,
control characters, and leading/trailing spaces (``my, model.ckpt`` is
written ``my%2C model.ckpt``). Percent-encoding was chosen over nested JSON
quotes because it never puts a quote or backslash into the value, so the
WebUI's outer quoting has nothing to escape and every WebUI version's
infotext regex reads it back intact; other text (including non-ASCII) stays
readable. Decoding only touches ``%XX`` codes of those characters, so a
reference-extension infotext with a literal ``%`` in a name is read as is.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any, Callable

from .params import SPECS, AnimateDiffParams, ParamError, ResolvedParams, coerce_field, default_of

logger = logging.getLogger(__name__)

INFOTEXT_KEY = "AnimateDiff"

# The entry's order: the reference writes enable first, then the parameters
# every run has, what was set, the module's hash and schedule, and img2img's.
_ALWAYS = sorted((n for n, s in SPECS.items() if s.infotext == "always"), key=lambda n: n != "enable")
_IF_SET = [n for n, s in SPECS.items() if s.infotext in ("when_set", "if_set")]
_IMG2IMG = [n for n, s in SPECS.items() if s.infotext == "img2img"]

# Keys that are not parameters but are typed when read. version comes from
# the reference extension's v2 infotexts.
_EXTRA_PARSERS: dict[str, Callable[[str], Any]] = {
    "mm_hash": str,
    "schedule": str,
    "version": str,
}

_MAX_SCHEDULE_LEN = 64

# --------------------------------------------------------------------------
# Escaping of string values.
# --------------------------------------------------------------------------

_SPECIAL = '%,:"\\'
_DECODABLE = frozenset(_SPECIAL + " " + "".join(map(chr, range(32))) + "\x7f")
_PERCENT_CODE = re.compile(r"%([0-9A-Fa-f]{2})")
# Only ASCII blanks are stripped when reading: str.strip() would also eat
# Unicode spaces (NBSP, U+0085) that escape_value leaves as they are.
_BLANKS = " \t\r\n"


def _escape_char(ch: str) -> str:
    if ch in _SPECIAL or ord(ch) < 32 or ord(ch) == 127:
        return f"%{ord(ch):02X}"
    return ch


def escape_value(text: str) -> str:
    """Percent-encode the characters that would break ``key: value, ...``."""
    body = "".join(map(_escape_char, text))
    # Outer spaces are encoded because the parser strips around separators.
    stripped = body.strip(" ")
    lead = len(body) - len(body.lstrip(" "))
    trail = len(body) - len(body.rstrip(" ")) if stripped else 0
    return "%20" * lead + stripped + "%20" * trail


def unescape_value(text: str) -> str:
    def decode(match: re.Match) -> str:
        ch = chr(int(match.group(1), 16))
        return ch if ch in _DECODABLE else match.group(0)

    return _PERCENT_CODE.sub(decode, text)


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # the reference's spelling
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return escape_value(str(value))


# --------------------------------------------------------------------------
# Writing.
# --------------------------------------------------------------------------


def short_hash(mm_hash: str | None) -> str:
    """First 8 hex digits of a sha256; "" when hashing is unavailable."""
    text = (mm_hash or "").strip().lower()
    if not text:
        return ""
    if not re.fullmatch(r"[0-9a-f]+", text):
        raise ValueError(f"mm_hash must be hexadecimal, got {text!r}")
    return text[:8]


def sanitize_schedule(schedule: str | None) -> str:
    """A short schedule label safe to write unescaped ("linear 0.00085-0.012").

    Separator characters become spaces rather than escapes: the label is for
    humans and never parsed back into numbers.
    """
    text = re.sub(r'[,:"\\%\x00-\x1f\x7f]', " ", schedule or "")
    return " ".join(text.split())[:_MAX_SCHEDULE_LEN].strip()


def format_infotext(
    params: AnimateDiffParams,
    resolved: ResolvedParams,
    *,
    mm_hash: str,
    schedule: str,
    is_img2img: bool,
) -> str:
    """The value of the ``AnimateDiff`` infotext entry.

    Parameters declared ``resolved`` are written as they ran (16 frames, not
    0; the frames per pass, the overlap and the dilation levels used), so
    pasting reproduces the run even without the original video source. mm_hash/schedule are omitted when empty (hash calculation
    disabled).
    """
    def value(name):
        ran = SPECS[name].resolved
        return getattr(resolved, ran) if ran else getattr(params, name)

    pairs: list[tuple[str, Any]] = [(name, value(name)) for name in _ALWAYS]
    pairs.extend((name, value(name)) for name in _IF_SET if value(name) != default_of(name))
    optional = [("mm_hash", short_hash(mm_hash)), ("schedule", sanitize_schedule(schedule))]
    pairs.extend((key, value) for key, value in optional if value)
    if is_img2img:
        pairs.extend((name, value(name)) for name in _IMG2IMG)
    return ", ".join(f"{key}: {_render(value)}" for key, value in pairs)


# --------------------------------------------------------------------------
# Reading.
# --------------------------------------------------------------------------


def _unwrap(text: str) -> str:
    """Accept a value still wrapped in the WebUI's outer JSON quotes."""
    text = text.strip(_BLANKS)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            inner = json.loads(text)
        except ValueError:
            return text
        if isinstance(inner, str):
            return inner.strip(_BLANKS)
    return text


def split_pairs(text: str) -> list[tuple[str, str]]:
    """``"a: 1, b: x"`` -> ``[("a", "1"), ("b", "x")]`` (values unescaped).

    Entries without a colon are kept with an empty value; the key is the text
    before the first colon, so a reference infotext with ``model: a:b.ckpt``
    still reads as model ``a:b.ckpt``.
    """
    pairs = []
    for entry in _unwrap(text).split(", "):
        key, _, value = entry.partition(":")
        key = key.strip(_BLANKS)
        if key:
            pairs.append((key, unescape_value(value.strip(_BLANKS))))
    return pairs


def _typed(key: str, raw: str) -> Any:
    if key in SPECS:
        # Types only: ranges are enforced when the pasted values are used.
        return coerce_field(key, raw, check_range=False)
    return _EXTRA_PARSERS[key](raw)


def parse_infotext(value: str | None, warn: Callable[[str], Any] | None = None) -> dict[str, object]:
    """Inverse of format_infotext, tolerant of older and foreign infotexts.

    Known keys get typed values through the same coercion as the params;
    unknown keys are kept as strings; a known key whose value cannot be read
    is dropped with a warning (so pasting keeps the UI's current value
    instead of failing as a whole).
    """
    warn = logger.warning if warn is None else warn
    result: dict[str, object] = {}
    for key, raw in split_pairs(value or ""):
        if key not in SPECS and key not in _EXTRA_PARSERS:
            result[key] = raw
            continue
        try:
            result[key] = _typed(key, raw)
        except (ParamError, ValueError) as exc:
            warn(f"AnimateDiff infotext: ignoring {key}: {exc}")
    return result


def paste_field_names(is_img2img: bool) -> tuple[str, ...]:
    """Parameters restored into the UI when an infotext is pasted."""
    return tuple(name for name, spec in SPECS.items()
                 if spec.pasted and (is_img2img or spec.infotext != "img2img"))


def paste_fields(value: str | None, is_img2img: bool, warn: Callable[[str], Any] | None = None) -> dict[str, object]:
    """Param name -> value to restore in the UI from an AnimateDiff entry.

    The reference's v2 stopped writing ``enable`` (the entry only exists for
    enabled runs), so a missing enable is read as True.
    """
    parsed = parse_infotext(value, warn)
    fields = {name: parsed[name] for name in paste_field_names(is_img2img) if name in parsed}
    if fields and "enable" not in parsed:
        fields["enable"] = True
    return fields

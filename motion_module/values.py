"""Value kinds of parameters and settings, and the declaration of a setting.

One class per kind. ``parse`` coerces a value from the UI, the API, an
infotext or a settings file to its canonical type and raises ValueError when
it cannot; ``allows`` checks the range; ``describe`` is the "must be ..."
part of error messages. Parameters (``request/params.py``) and settings
(``request/settings.py``, ``video/options.py``) declare their fields with
these, so each rule exists once.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from typing import Any, Mapping


def _integral(number: float) -> int:
    if not number.is_integer():  # also rejects nan/inf
        raise ValueError("not an integral number")
    return int(number)


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
        return _integral(float(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            return _integral(float(text))
    raise ValueError(f"{type(value).__name__} is not an integer")


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


def parse_bool(value: Any) -> bool:
    """bool, 0/1, or "true"/"false"/"1"/"0" (any case) -> bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Real) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "1"):
            return True
        if word in ("false", "0"):
            return False
    raise ValueError(f"{value!r} is not a boolean")


class Kind:
    """Base: every value accepted as is, any value in range."""

    type_name = "value"

    def parse(self, value: Any) -> Any:
        return value

    def allows(self, value: Any) -> bool:
        return True

    def describe(self) -> str:
        return self.type_name


@dataclass(frozen=True)
class Int(Kind):
    low: int
    high: int | None = None  # None: no upper bound
    type_name = "integer"

    def parse(self, value: Any) -> int:
        return parse_int(value)

    def allows(self, value: int) -> bool:
        return self.low <= value and (self.high is None or value <= self.high)

    def describe(self) -> str:
        if self.high is None:
            return f"an integer of at least {self.low}"
        return f"an integer between {self.low} and {self.high}"


@dataclass(frozen=True)
class Float(Kind):
    low: float
    high: float
    type_name = "number"

    def parse(self, value: Any) -> float:
        return parse_float(value)

    def allows(self, value: float) -> bool:
        return self.low <= value <= self.high

    def describe(self) -> str:
        return f"a number between {self.low:g} and {self.high:g}"


@dataclass(frozen=True)
class Bool(Kind):
    type_name = "boolean"

    def parse(self, value: Any) -> bool:
        return parse_bool(value)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Text(Kind):
    """A string; None reads as "" (API clients send null for empty fields)."""

    type_name = "string"

    def parse(self, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        raise ValueError(f"{type(value).__name__} is not a string")

    def describe(self) -> str:
        return "a string"


@dataclass(frozen=True)
class Choice(Kind):
    """One of fixed strings, matched case-insensitively ("r+p", "film")."""

    choices: tuple[str, ...]
    type_name = "choice"

    def parse(self, value: Any) -> str:
        if value is None and "" in self.choices:
            return ""
        if isinstance(value, str):
            wanted = value.strip().casefold()
            for choice in self.choices:
                if choice.casefold() == wanted:
                    return choice
        raise ValueError(f"{value!r} is not one of {self.choices}")

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) if not c else c for c in self.choices)


@dataclass(frozen=True)
class ChoiceList(Kind):
    """A selection from fixed strings: a list, or one comma-separated string.

    Returned in ``choices`` order without duplicates, so equal selections
    compare equal whatever order or case the client used. ``required``: at
    least one of these must be chosen (empty = no such rule).
    """

    choices: tuple[str, ...]
    required: tuple[str, ...] = ()
    type_name = "list"

    def parse(self, value: Any) -> list[str]:
        if isinstance(value, str):
            items: list[Any] = value.split(",")
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = list(value)
        else:
            raise ValueError(f"{type(value).__name__} is not a list")
        one = Choice(self.choices)
        chosen = {one.parse(item) for item in items if not (isinstance(item, str) and not item.strip())}
        return [name for name in self.choices if name in chosen]

    def allows(self, value: list[str]) -> bool:
        return not self.required or any(name in self.required for name in value)

    def describe(self) -> str:
        text = "a list from " + ", ".join(self.choices)
        if self.required:
            text += " with at least one of " + ", ".join(self.required)
        return text


@dataclass(frozen=True)
class SafeName(Text):
    """A string that becomes part of a file name: bounded, one path component."""

    max_len: int = 128
    forbidden: str = '/\\:*?"<>|'

    def allows(self, value: str) -> bool:
        if len(value) > self.max_len:
            return False
        return not any(ch in self.forbidden or ord(ch) < 32 or ord(ch) == 127 for ch in value)

    def describe(self) -> str:
        return (f"a string of at most {self.max_len} characters without control characters or any of "
                + "".join(sorted(self.forbidden)))


@dataclass(frozen=True)
class VideoFile(Kind):
    """A video path, or None; gradio clears the component to ""."""

    type_name = "video"

    def parse(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, str):
            return value or None
        raise ValueError(f"{type(value).__name__} is not a video path")

    def describe(self) -> str:
        return "a video file path or None"


@dataclass(frozen=True)
class ImageValue(Kind):
    """None, a base64/data-URL string, or an image object (kept as is).

    Decoding happens in the WebUI glue, where the image is used; here only
    values that can never be an image are refused, without importing PIL
    (PIL images have ``size`` and ``mode``, numpy arrays ``shape``/``dtype``).
    """

    type_name = "image"

    def parse(self, value: Any) -> object:
        if value is None:
            return None
        if isinstance(value, str):
            return value.strip() or None
        if (hasattr(value, "size") and hasattr(value, "mode")) or (hasattr(value, "shape") and hasattr(value, "dtype")):
            return value
        raise ValueError(f"{type(value).__name__} is not an image")

    def describe(self) -> str:
        return "an image (PIL image or base64 string) or None"


def show(value: Any) -> str:
    """repr() for messages, shortened so a base64 image cannot flood a log."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class Setting:
    """One ``animatediff_*`` WebUI setting.

    ui: "textbox", "password", "checkbox", "checkboxes", "slider", "dropdown"
        or "radio"; choices and ranges come from ``kind``.
    option: the ``VideoOptions`` field it feeds ("" = read elsewhere).
    readme_default: README wording of the default where the value alone
        does not say it.
    """

    key: str
    default: Any
    kind: Kind
    label: str
    hint: str
    ui: str
    section: tuple[str, str] = ("animatediff", "AnimateDiff")
    option: str = ""
    needs_reload: bool = False
    readme_default: str = ""

    def coerce(self, value: Any) -> Any:
        """The typed value (None = the default); ValueError naming the key otherwise."""
        if value is None:
            return self.default
        try:
            parsed = self.kind.parse(value)
        except (ValueError, TypeError, OverflowError):
            parsed = _INVALID
        if parsed is _INVALID or not self.kind.allows(parsed):
            raise ValueError(f"setting {self.key}={show(value)} is invalid: allowed {self.kind.describe()}")
        return parsed

    def read(self, source: Any) -> Any:
        """The stored value in ``shared.opts`` (or a mapping), typed."""
        raw = source.get(self.key) if isinstance(source, Mapping) else getattr(source, self.key, None)
        return self.coerce(raw)


_INVALID = object()

"""Options shared by all video writers.

`VideoOptions` is a plain dataclass so that the writers stay independent of
the WebUI: the WebUI glue reads `shared.opts` once and builds one of these
(`VideoOptions.from_settings` understands the v1.13.1 setting keys).
Every value is checked when the object is built, so a bad setting fails
with a message naming the field instead of deep inside an encoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from typing import Any, Mapping

# x264 accepts exactly these; "" means "do not pass the option at all", so
# the encoder default applies (the WebUI's dropdowns offer "" first).
MP4_PRESETS = (
    "", "veryslow", "slower", "slow", "medium", "fast", "faster",
    "veryfast", "superfast", "ultrafast",
)
MP4_TUNES = ("", "film", "animation", "grain")

# Names as the WebUI setting keys spell them (the bucket key really is
# misspelled upstream; users' config.json files depend on it).
SETTING_KEYS = {
    "gif_palette": "animatediff_optimize_gif_palette",
    "gif_gifsicle": "animatediff_optimize_gif_gifsicle",
    "mp4_crf": "animatediff_mp4_crf",
    "mp4_preset": "animatediff_mp4_preset",
    "mp4_tune": "animatediff_mp4_tune",
    "webp_quality": "animatediff_webp_quality",
    "webp_lossless": "animatediff_webp_lossless",
    "s3_enable": "animatediff_s3_enable",
    "s3_host": "animatediff_s3_host",
    "s3_port": "animatediff_s3_port",
    "s3_access_key": "animatediff_s3_access_key",
    "s3_secret_key": "animatediff_s3_secret_key",
    "s3_bucket": "animatediff_s3_storge_bucket",
}

# Fallbacks of the original code when the host/port settings are empty.
DEFAULT_S3_HOST = "127.0.0.1"
DEFAULT_S3_PORT = 9001


def _fail(name: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"VideoOptions.{name}={value!r} is invalid: allowed {allowed}")


def _int_in(name: str, value: Any, lo: int, hi: int | None) -> int:
    # bool is an int subclass; True as a CRF is almost certainly a bug.
    if isinstance(value, bool):
        raise _fail(name, value, f"an integer in [{lo}, {hi if hi is not None else 'inf'}]")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        raise _fail(name, value, f"an integer in [{lo}, {hi if hi is not None else 'inf'}]")
    return value


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise _fail(name, value, "True or False")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str) or value not in choices:
        raise _fail(name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def _opt_str(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(name, value, "a string (or None)")
    return value.strip()


@dataclass
class VideoOptions:
    """Everything the writers need besides the frames.

    fps           frames per second, > 0; may be fractional (29.97 from a
                  source video). GIF/WEBP store per-frame durations, rounded
                  so the total length is right (see gif.py / webp.py).
    loop_number   0 = loop forever; N > 0 = the animation is *shown N times
                  in total* (GIF and WEBP; MP4/WEBM have no loop flag).
    infotext      the generation parameters, embedded in every format.
    gif_palette   one global 256-colour palette computed over all frames.
    gif_gifsicle  run `gifsicle -O3` after writing, when the binary exists.
    mp4_crf       0..51, x264 constant rate factor (also used for WEBM
                  unless `webm_crf` is set; VP9 accepts 0..63).
    mp4_preset / mp4_tune   x264 options; "" = not passed.
    webm_crf      None = use mp4_crf; else 0..63.
    webp_quality  1..100;  webp_lossless  bool.
    s3_*          optional upload of each written video (see s3.py).
    """

    fps: float = 8
    loop_number: int = 0
    infotext: str = ""
    gif_palette: bool = False
    gif_gifsicle: bool = False
    mp4_crf: int = 23
    mp4_preset: str = ""
    mp4_tune: str = ""
    webm_crf: int | None = None
    webp_quality: int = 80
    webp_lossless: bool = False
    s3_enable: bool = False
    s3_host: str = DEFAULT_S3_HOST
    s3_port: int = DEFAULT_S3_PORT
    s3_access_key: str = field(default="", repr=False)
    # repr=False: the options object is easy to log by accident.
    s3_secret_key: str = field(default="", repr=False)
    s3_bucket: str = ""

    def __post_init__(self) -> None:
        self.fps = self._check_fps(self.fps)
        self.loop_number = _int_in("loop_number", self.loop_number, 0, None)
        if self.infotext is None:
            self.infotext = ""
        if not isinstance(self.infotext, str):
            raise _fail("infotext", self.infotext, "a string")
        self.gif_palette = _bool("gif_palette", self.gif_palette)
        self.gif_gifsicle = _bool("gif_gifsicle", self.gif_gifsicle)
        self.mp4_crf = _int_in("mp4_crf", self.mp4_crf, 0, 51)
        self.mp4_preset = _choice("mp4_preset", self.mp4_preset, MP4_PRESETS)
        self.mp4_tune = _choice("mp4_tune", self.mp4_tune, MP4_TUNES)
        if self.webm_crf is not None:
            self.webm_crf = _int_in("webm_crf", self.webm_crf, 0, 63)
        self.webp_quality = _int_in("webp_quality", self.webp_quality, 1, 100)
        self.webp_lossless = _bool("webp_lossless", self.webp_lossless)
        self.s3_enable = _bool("s3_enable", self.s3_enable)
        self.s3_host = _opt_str("s3_host", self.s3_host) or DEFAULT_S3_HOST
        port = self.s3_port
        if port is None or (isinstance(port, str) and not port.strip()):
            port = DEFAULT_S3_PORT
        if self.s3_enable:
            # Only checked when used: junk left in a disabled setting must not
            # stop the videos from being written.
            host = self.s3_host
            if "/" in host or any(c.isspace() for c in host) or (":" in host and not host.startswith("[")):
                raise _fail("s3_host", host, "a host name or IP address, without scheme, port or path")
            self.s3_port = _int_in("s3_port", port, 1, 65535)
        else:
            try:
                self.s3_port = _int_in("s3_port", port, 1, 65535)
            except ValueError:
                self.s3_port = DEFAULT_S3_PORT
        self.s3_access_key = _opt_str("s3_access_key", self.s3_access_key)
        self.s3_secret_key = _opt_str("s3_secret_key", self.s3_secret_key)
        self.s3_bucket = _opt_str("s3_bucket", self.s3_bucket)

    @staticmethod
    def _check_fps(value: Any) -> float:
        allowed = "a finite number > 0 (at most 1000)"
        if isinstance(value, bool):
            raise _fail("fps", value, allowed)
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise _fail("fps", value, allowed) from None
        if not math.isfinite(f) or f <= 0 or f > 1000:
            raise _fail("fps", value, allowed)
        return int(f) if f.is_integer() else f

    @property
    def fps_fraction(self) -> Fraction:
        """fps as an exact rational; 29.97 stays 2997/100, not a binary float."""
        return Fraction(str(self.fps)).limit_denominator(1_000_000)

    @property
    def effective_webm_crf(self) -> int:
        return self.mp4_crf if self.webm_crf is None else self.webm_crf

    def with_(self, **changes: Any) -> "VideoOptions":
        """A validated copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def from_settings(cls, settings: Any, **values: Any) -> "VideoOptions":
        """Build options from WebUI-style settings.

        `settings` is a mapping or any object with attributes (the WebUI's
        `shared.opts` works) keyed by the `animatediff_*` names in
        SETTING_KEYS; missing or None entries keep the defaults.  Per-run
        values (fps, loop_number, infotext, ...) are passed as keywords and
        win over the settings.
        """
        kwargs: dict[str, Any] = {}
        for name, key in SETTING_KEYS.items():
            if isinstance(settings, Mapping):
                value = settings.get(key)
            else:
                value = getattr(settings, key, None)
            if value is not None:
                kwargs[name] = value
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"VideoOptions has no field(s) {sorted(unknown)}; known: {sorted(known)}")
        kwargs.update(values)
        return cls(**kwargs)

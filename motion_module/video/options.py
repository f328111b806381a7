"""What the video writers need besides the frames, and the settings that feed it.

`VideoOptions` holds typed, valid values and is built once per video by
`VideoOptions.from_settings` from the WebUI's `shared.opts` (or a mapping),
validated through the setting declarations below, which are the only place
the writer settings' keys, defaults, ranges and labels are stated.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from ..values import Bool, Choice, Int, Setting, Text

# x264 accepts exactly these; "" means "do not pass the option", so the
# encoder's default applies.
MP4_PRESETS = ("", "veryslow", "slower", "slow", "medium", "fast", "faster", "veryfast", "superfast", "ultrafast")
MP4_TUNES = ("", "film", "animation", "grain")
AWS = ("animatediff_aws", "AnimateDiff AWS")
# Fallbacks of the reference extension when the host/port settings are empty.
DEFAULT_S3_HOST = "127.0.0.1"
DEFAULT_S3_PORT = 9001

WRITER_SETTINGS: tuple[Setting, ...] = (
    Setting("animatediff_optimize_gif_palette", False, Bool(),
            "Calculate the optimal GIF palette (one global palette, no dithering between frames)",
            "One global 256-colour palette computed over all frames, without dithering, so colours do not "
            "shimmer.", "checkbox", option="gif_palette"),
    Setting("animatediff_optimize_gif_gifsicle", False, Bool(), "Optimize GIFs with gifsicle (needs the gifsicle binary)",
            "Run `gifsicle -O3` on each GIF. If the program is missing, a warning is logged and the GIF is kept "
            "unoptimised.", "checkbox", option="gif_gifsicle"),
    Setting("animatediff_mp4_crf", 23, Int(0, 51), "MP4 Quality (CRF, lower is better)",
            "Quality, 0–51 (lower is better). H.264 CRF for MP4; also the VP9 CRF for WEBM.", "slider",
            option="mp4_crf"),
    Setting("animatediff_mp4_preset", "", Choice(MP4_PRESETS), "MP4 Encoding Preset",
            "x264 preset (`veryslow` … `ultrafast`); `\"\"` = the encoder's default.", "dropdown", option="mp4_preset"),
    Setting("animatediff_mp4_tune", "", Choice(MP4_TUNES), "MP4 Tune encoding for content type",
            "x264 tune: `film`, `animation`, `grain`; `\"\"` = none.", "dropdown", option="mp4_tune"),
    Setting("animatediff_webp_quality", 80, Int(1, 100), "WebP Quality (if lossless is on, the compression effort)",
            "WebP quality, 1–100 (the compression effort when lossless).", "slider", option="webp_quality"),
    Setting("animatediff_webp_lossless", False, Bool(), "Save WebP in lossless format", "Lossless WebP.",
            "checkbox", option="webp_lossless"),
    Setting("animatediff_s3_enable", False, Bool(), "Enable to Store file in object storage that supports the s3 protocol",
            "Upload every video file to S3-compatible storage (needs `boto3`).", "checkbox", AWS, option="s3_enable"),
    Setting("animatediff_s3_host", None, Text(), "S3 protocol host",
            "Host name or IP, without scheme, port or path.", "textbox", AWS, option="s3_host",
            readme_default=f"empty (= `{DEFAULT_S3_HOST}`)"),
    Setting("animatediff_s3_port", None, Text(), "S3 protocol port", "Port.", "textbox", AWS, option="s3_port",
            readme_default=f"empty (= `{DEFAULT_S3_PORT}`)"),
    Setting("animatediff_s3_access_key", None, Text(), "S3 protocol access_key",
            "Access key. With no keys, requests are sent unsigned. Never logged or answered.", "password", AWS,
            option="s3_access_key"),
    Setting("animatediff_s3_secret_key", None, Text(), "S3 protocol secret_key", "Secret key. Never logged or answered.",
            "password", AWS, option="s3_secret_key"),
    Setting("animatediff_s3_storge_bucket", None, Text(), "Bucket for file storage",
            "Bucket, created if it is missing. The key is misspelled (\"storge\") for compatibility with the "
            "reference.", "textbox", AWS, option="s3_bucket"),
)
_BY_OPTION = {s.option: s for s in WRITER_SETTINGS}


def _default(option: str, **kw):
    return field(default=_BY_OPTION[option].default, **kw)


@dataclass
class VideoOptions:
    """Everything the writers need besides the frames; values are valid.

    fps           frames per second, > 0; may be fractional (29.97 from a
                  source video). GIF/WEBP store per-frame durations, rounded
                  so the total length is right (see gif.py / webp.py).
    loop_number   0 = loop forever; N > 0 = the animation is *shown N times
                  in total* (GIF and WEBP; MP4/WEBM have no loop flag).
    infotext      the generation parameters, embedded in every format.
    The other fields are the settings of WRITER_SETTINGS (see their hints).
    """

    fps: float = 8
    loop_number: int = 0
    infotext: str = ""
    gif_palette: bool = _default("gif_palette")
    gif_gifsicle: bool = _default("gif_gifsicle")
    mp4_crf: int = _default("mp4_crf")
    mp4_preset: str = _default("mp4_preset")
    mp4_tune: str = _default("mp4_tune")
    webp_quality: int = _default("webp_quality")
    webp_lossless: bool = _default("webp_lossless")
    s3_enable: bool = _default("s3_enable")
    s3_host: str = DEFAULT_S3_HOST
    s3_port: int = DEFAULT_S3_PORT
    # repr=False: the options object is easy to log by accident.
    s3_access_key: str = field(default="", repr=False)
    s3_secret_key: str = field(default="", repr=False)
    s3_bucket: str = ""

    @property
    def fps_fraction(self) -> Fraction:
        """fps as an exact rational; 29.97 stays 2997/100, not a binary float."""
        return Fraction(str(self.fps)).limit_denominator(1_000_000)

    def with_(self, **changes: Any) -> "VideoOptions":
        return replace(self, **changes)

    @classmethod
    def from_settings(cls, settings: Any, **per_run: Any) -> "VideoOptions":
        """Options from WebUI settings (``shared.opts`` or a mapping), validated once.

        Unset settings keep their defaults; a value a writer cannot use raises
        ValueError naming the setting key. The S3 settings are only checked
        when S3 is enabled: junk left in a disabled setting must not stop the
        videos from being written. Per-run values (fps, loop_number,
        infotext) are keywords.
        """
        values = {s.option: s.read(settings) for s in WRITER_SETTINGS}
        values["s3_host"] = (values["s3_host"] or "").strip() or DEFAULT_S3_HOST
        for name in ("s3_access_key", "s3_secret_key", "s3_bucket"):
            values[name] = (values[name] or "").strip()
        values["s3_port"] = _s3_port(values["s3_port"], values["s3_enable"])
        if values["s3_enable"]:
            _check_s3_host(values["s3_host"])
        return cls(**values, **per_run)


def _s3_port(raw: str | None, enabled: bool) -> int:
    text = (raw or "").strip()
    if not text:
        return DEFAULT_S3_PORT
    port = Int(1, 65535)
    try:
        value = port.parse(text)
        if port.allows(value):
            return value
    except ValueError:
        pass
    if enabled:
        raise ValueError(f"setting animatediff_s3_port={raw!r} is invalid: allowed {port.describe()}")
    return DEFAULT_S3_PORT


def _check_s3_host(host: str) -> None:
    if "/" in host or any(c.isspace() for c in host) or (":" in host and not host.startswith("[")):
        raise ValueError(f"setting animatediff_s3_host={host!r} is invalid: allowed a host name or IP address, "
                         "without scheme, port or path")

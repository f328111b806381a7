"""Where output files go and what they are called.

Layout (same as the original extension, so users' scripts keep working):

    {outpath}/AnimateDiff/{YYYY-MM-DD}/{seq:05}-{seed}[-{request_id}].{ext}

`seq` follows the WebUI rule: one more than the largest leading number of
any entry in the folder.  Two guards keep a file from ever being replaced:
a stem is only handed out when none of its target names exist, and the
writers' final rename refuses to replace an existing file (atomic.py).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

REQUEST_ID_MAX_LEN = 64

_LEADING_NUMBER = re.compile(r"^(\d+)(?=$|[-._])")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

# Stems handed out by this process that may not have a file on disk yet
# (a writer still encoding, or every writer failed).  Without this two
# threads saving at the same moment would both get max+1.
_lock = threading.Lock()
_reserved: dict[str, set[int]] = {}


def sanitize_request_id(request_id: object, max_len: int = REQUEST_ID_MAX_LEN) -> str:
    """Make an API-supplied request id safe to put inside a file name.

    Every run of characters outside [A-Za-z0-9._-] becomes one "_", so a
    path separator can never survive; leading/trailing ".", "_", "-" are
    stripped (no hidden files, no "..", nothing that looks like an option),
    and the result is cut to `max_len`.  An empty result means "no suffix".
    """
    if request_id is None:
        return ""
    text = str(request_id)
    text = _UNSAFE.sub("_", text)
    text = text.strip("._-")
    text = text[:max_len].rstrip("._-")
    # The name must not be made of dots only; after the strip above it can't
    # be, but keep the invariant explicit because it is what makes ".."
    # impossible as a whole component.
    if set(text) <= {"."}:
        return ""
    return text


def date_folder_name(day: _dt.date | _dt.datetime | None = None) -> str:
    day = day or _dt.datetime.now()
    return day.strftime("%Y-%m-%d")


def video_folder(outpath: str | os.PathLike, day: _dt.date | _dt.datetime | None = None) -> Path:
    """`{outpath}/AnimateDiff/{YYYY-MM-DD}` (not created)."""
    return Path(outpath) / "AnimateDiff" / date_folder_name(day)


def existing_sequence_numbers(folder: str | os.PathLike) -> list[int]:
    """Leading numbers of the entries in `folder` (files and folders).

    Hidden names (our temporary files start with ".") are not counted.
    """
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        m = _LEADING_NUMBER.match(name)
        if m:
            out.append(int(m.group(1)))
    return out


def next_sequence_number(folder: str | os.PathLike) -> int:
    """WebUI rule: largest leading number in the folder + 1 (0 if none)."""
    numbers = existing_sequence_numbers(folder)
    return max(numbers) + 1 if numbers else 0


def make_stem(seq: int, seed: int | str, request_id: str = "") -> str:
    rid = sanitize_request_id(request_id)
    stem = f"{seq:05}-{_seed_text(seed)}"
    return f"{stem}-{rid}" if rid else stem


def _seed_text(seed: int | str) -> str:
    try:
        return str(int(seed))
    except (TypeError, ValueError):
        raise ValueError(f"seed={seed!r} is invalid: allowed an integer") from None


@dataclass(frozen=True)
class OutputName:
    folder: Path
    seq: int
    stem: str

    def path(self, ext: str) -> Path:
        return self.folder / f"{self.stem}.{ext.lstrip('.').lower()}"

    @property
    def frames_folder(self) -> Path:
        """Per-video PNG folder: `{folder}/{stem}/`."""
        return self.folder / self.stem


def allocate_name(
    folder: str | os.PathLike,
    seed: int | str,
    request_id: str = "",
    extensions: Iterable[str] = ("gif", "mp4", "webp", "webm", "txt"),
) -> OutputName:
    """Pick the next free `{seq:05}-{seed}[-{rid}]` stem in `folder`.

    The folder is created.  `seq` moves on while any `{stem}.{ext}` for the
    given extensions, or the per-video frames folder, already exists, or the
    number was handed out earlier by this process.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    exts = [e.lstrip(".").lower() for e in extensions]
    key = os.path.normcase(os.path.abspath(folder))
    with _lock:
        numbers = existing_sequence_numbers(folder)
        top = max(numbers) if numbers else -1
        reserved = _reserved.setdefault(key, set())
        # Numbers covered by real files no longer need remembering.
        reserved.difference_update({n for n in reserved if n <= top})
        seq = next_sequence_number(folder)
        while True:
            if seq not in reserved:
                name = OutputName(folder, seq, make_stem(seq, seed, request_id))
                taken = name.frames_folder.exists() or any(name.path(e).exists() for e in exts)
                if not taken:
                    reserved.add(seq)
                    return name
            seq += 1

"""Prompt travel: a prompt that changes along the video.

    masterpiece, best quality        <- head lines (optional)
    0: a cat sitting
    8: a cat running                 <- keyframe lines "N: text"
    sunny day                        <- tail lines (optional)

Keyframe k's prompt is head, its text and tail joined with ", ". Frames
between two keyframes get conditionings interpolated between theirs (``slerp``
by default, ``lerp`` on request); before the first and after the last
keyframe they hold, or, when the loop is closed, travel across the loop
boundary towards the first keyframe. Everything here is pure: parsing,
the per-frame schedule and the interpolation of conditioning tensors.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field

import torch

from .errors import ParamError

_KEYFRAME = re.compile(r"^\s*(\d+)\s*:(.*)$")
#: Interpolation methods between keyframe conditionings; the first is the default.
INTERPOLATIONS = ("slerp", "lerp")
DEFAULT_INTERPOLATION = INTERPOLATIONS[0]
#: Closed-loop modes in which travel wraps from the last keyframe to the first
#: (on videos longer than the context); the others hold the end keyframes.
WRAPPING_MODES = ("R+P", "A")
# Above this |cos| two conditionings are treated as parallel and lerped
# (slerp divides by sin of the angle), as the reference does.
_PARALLEL = 0.9995


@dataclass(frozen=True)
class Travel:
    """A parsed travel prompt: keyframe number -> that frame's full prompt."""

    prompts: dict[int, str]
    warnings: tuple[str, ...] = field(default=())

    @property
    def keyframes(self) -> list[int]:
        return sorted(self.prompts)

    def frame_prompts(self, frames: int) -> list[str]:
        """Each frame's prompt text: its keyframe's, or the first one's before it.

        Frames before the first keyframe take the first keyframe's text, so
        that text (with its LoRA tags) is what the WebUI reads first."""
        keys = self.keyframes
        out, current = [], keys[0]
        for frame in range(frames):
            if frame in self.prompts:
                current = frame
            out.append(self.prompts[current])
        return out

    def describe(self, frames: int) -> str:
        """How the prompt was read, one line per keyframe, for the UI."""
        keys = self.keyframes
        lines = []
        for i, key in enumerate(keys):
            end = keys[i + 1] - 1 if i + 1 < len(keys) else frames - 1
            span = f"frame {key}" if end == key else f"frames {key}–{end}"
            lines.append(f"{span}: {self.prompts[key]}")
        return "\n".join(lines + list(self.warnings))


def _clean(text: str) -> str:
    return text.strip().strip(",").strip()


def _join(*parts: str) -> str:
    return ", ".join(p for p in map(_clean, parts) if p)


def has_keyframes(prompt: str) -> bool:
    return any(_KEYFRAME.match(line) for line in prompt.splitlines())


def parse(prompt: str, frames: int) -> Travel | None:
    """The travel in a prompt, or None for an ordinary prompt (no keyframe lines).

    Lines before the first keyframe are the head, lines after the last one
    the tail; a plain line between two keyframes continues the keyframe above
    it. Blank lines and Windows line endings are fine, ``8:text`` needs no
    space, and keyframes out of order are sorted (with a warning). Refused
    with ParamError("prompt"), naming the line: a keyframe at or beyond the
    number of frames, the same keyframe twice, a keyframe without text.
    """
    lines = [(n, line) for n, line in enumerate(prompt.splitlines(), 1) if line.strip()]
    found = [(n, _KEYFRAME.match(line)) for n, line in lines]
    positions = [i for i, (_, m) in enumerate(found) if m]
    if not positions:
        return None
    first, last = positions[0], positions[-1]
    head = [line for _, line in lines[:first]]
    tail = [line for _, line in lines[last + 1:]]
    texts: dict[int, list[str]] = {}
    order: list[int] = []
    current = None
    for (number, match), (_, line) in zip(found[first:last + 1], lines[first:last + 1]):
        if match is None:
            texts[current].append(line)
            continue
        key, text = int(match.group(1)), match.group(2)
        where = f"line {number} ({line.strip()[:60]!r})"
        if key >= frames:
            raise ParamError("prompt", f"prompt travel: keyframe {key} on {where} is at or beyond the number of "
                                       f"frames ({frames}); keyframes go from 0 to {frames - 1}")
        if key in texts:
            raise ParamError("prompt", f"prompt travel: keyframe {key} appears twice, again on {where}")
        if not _clean(text):
            raise ParamError("prompt", f"prompt travel: keyframe {key} on {where} has no text")
        texts[key], current = [text], key
        order.append(key)
    warnings = ()
    if order != sorted(order):
        warnings = (f"prompt travel: keyframes were not in order ({', '.join(map(str, order))}); they are "
                    "used sorted",)
    prompts = {key: _join(", ".join(map(_clean, head)), ", ".join(map(_clean, texts[key])),
                          ", ".join(map(_clean, tail))) for key in sorted(texts)}
    return Travel(prompts, warnings)


def schedule(keyframes: list[int], frames: int, wrap: bool) -> list[tuple[int, int, float]]:
    """Per frame (previous keyframe, next keyframe, weight of the next one).

    Between keyframes a and b, frame i gets (a, b, (i - a) / (b - a)). Before
    the first and after the last keyframe: with ``wrap`` the travel goes
    across the loop boundary from the last keyframe to the first (distances
    taken around the loop of ``frames``); without it the frame holds the
    nearest keyframe (weight 0).
    """
    keys = sorted(keyframes)
    out = []
    for i in range(frames):
        before = [k for k in keys if k <= i]
        after = [k for k in keys if k > i]
        if before and after:
            a, b = before[-1], after[0]
            out.append((a, b, (i - a) / (b - a)))
        elif not wrap or len(keys) == 1:
            key = before[-1] if before else after[0]
            out.append((key, key, 0.0))
        else:
            a, b = keys[-1], keys[0]
            gap = (b - a) % frames
            out.append((a, b, ((i - a) % frames) / gap))
    return out


def wraps(video_length: int, context_length: int, closed_loop: str) -> bool:
    """Whether travel crosses the loop boundary (the reference's rule)."""
    return video_length > context_length and closed_loop in WRAPPING_MODES


def _pad_tokens(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Equal token counts, as the WebUI makes them for one batch: the shorter
    conditioning repeats its last token vector (prompt_parser.reconstruct_cond_batch)."""
    if a.dim() < 2 or a.shape[-2] == b.shape[-2]:
        return a, b
    longer = max(a.shape[-2], b.shape[-2])

    def pad(x):
        extra = longer - x.shape[-2]
        return x if not extra else torch.cat([x, x[..., -1:, :].expand(*x.shape[:-2], extra, x.shape[-1])], dim=-2)

    return pad(a), pad(b)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of the elements in which a and b differ.

    What both conditionings share (CLIP's first token, SDXL's size
    embedding, a ControlNet marker row) is kept as it is; the rest moves on a
    great circle, treated as one vector, and falls back to lerp where the two
    are (nearly) parallel."""
    a, b = _pad_tokens(a, b)
    differ = a != b
    if not bool(differ.any()):
        return a.clone()
    va, vb = a[differ].double(), b[differ].double()
    cos = float(torch.dot(va, vb) / (va.norm() * vb.norm()).clamp_min(1e-30))
    if abs(cos) > _PARALLEL:
        mixed = (1 - t) * va + t * vb
    else:
        omega = math.acos(max(-1.0, min(1.0, cos)))
        mixed = (math.sin((1 - t) * omega) * va + math.sin(t * omega) * vb) / math.sin(omega)
    out = a.clone()
    out[differ] = mixed.to(a.dtype)
    return out


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    a, b = _pad_tokens(a, b)
    return torch.lerp(a, b, t) if t else a.clone()


def interpolate(a, b, t: float, method: str = DEFAULT_INTERPOLATION):
    """One frame's conditioning between keyframe conditionings a and b
    (tensors, or dicts of tensors as SDXL's crossattn/vector)."""
    if isinstance(a, dict):
        return {key: interpolate(a[key], b[key], t, method) for key in a}
    if t == 0:
        return a
    return (slerp if method == "slerp" else lerp)(a, b, t)


def travel_rows(cond, frames: int, plan: list[tuple[int, int, float]], method: str = DEFAULT_INTERPOLATION):
    """Replace the rows of a per-frame conditioning batch (videos × frames rows,
    video-major; a tensor or SDXL's dict) by the travelled ones: frame i of
    every video gets ``interpolate(row[a], row[b], t)`` of that video's rows."""
    if isinstance(cond, dict):
        out = copy.copy(cond)  # keeps the WebUI's dict type (DictWithShape for SDXL)
        out.update({key: travel_rows(value, frames, plan, method) for key, value in cond.items()})
        return out
    rows = []
    for video in range(cond.shape[0] // frames):
        base = video * frames
        rows += [interpolate(cond[base + a], cond[base + b], t, method) for a, b, t in plan]
    return torch.stack(rows)

"""Which frames each UNet pass sees when a video is longer than the context.

A motion module attends over at most ``length`` frames at once (its context
batch size, bounded by the position-encoding table it was trained with). To
make a longer video the UNet runs several times per denoising step, each time
on a *window* of frame indexes; ``fuse.py`` combines the per-window outputs.

The schedule follows the "uniform" scheduler of sd-webui-animatediff v1.13.1
(itself from animatediff-cli), see ``params.md`` section 5. Deliberate
differences, all of which only remove waste or fix holes:

* clips no longer than the context give one window of exactly ``num_frames``
  frames (the reference always used ``length`` frames, padding the batch);
* exact duplicate windows are dropped, keeping the first occurrence: we fuse
  by averaging, so a duplicate would cost a UNet pass and change nothing;
* in closed-loop mode ``"N"``, a "first window" that the reference postponed
  to the next wrapping window is still emitted when no further wrapping window
  comes, so no frame is ever left without a prediction.

``stride`` is the *number of dilation levels* (dilations 1, 2, 4, ...), as the
reference code implements it, not the largest dilation as its README says.
Keeping the code's meaning keeps saved infotexts and API payloads reproducible.

Options arrive validated (``motion_module.request.params`` checks them once
per request); nothing here checks them again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

#: Closed-loop modes, the only place they are declared.
CLOSED_LOOP_MODES = {
    "N": "no contiguous window joins the last frames to the first",
    "R-P": "a window wraps around only where it crosses the end",
    "R+P": "the same windows as R-P; prompt travel also wraps",
    "A": "windows may also start one overlap past the end: more wrap-around, a stronger loop",
}

_U64 = 1 << 64
_BELOW_ONE = math.nextafter(1.0, 0.0)


@dataclass(frozen=True)
class ContextOptions:
    """Settings of the sliding context scheduler, already resolved and valid.

    Attributes:
        length: context batch size B, frames per UNet pass (>= 1).
        stride: number of dilation levels, 1 = contiguous windows only.
        overlap: frames shared by consecutive windows, 0 <= overlap < length.
        closed_loop: one of :data:`CLOSED_LOOP_MODES`.
        fuse: one of ``fuse.FUSES``.
    """

    length: int
    stride: int
    overlap: int
    closed_loop: str
    fuse: str = "pyramid"


def ordered_halving(step: int) -> float:
    """Bit-reversal of ``step`` as a 64-bit fraction: 0, 1/2, 1/4, 3/4, 1/8, 5/8, ...

    The result is in [0, 1).  Successive sampling steps get phases that keep splitting the largest gap
    left so far, so the window seams visit well-spread positions of the clip
    instead of sitting on the same frames at every step.
    """
    if not 0 <= step < _U64:
        raise ValueError(f"step must be in 0..2**64-1, got {step}")
    reversed_bits = int(f"{step:064b}"[::-1], 2)
    # Float division rounds values within 2**-54 of 1 up to exactly 1.0 (only
    # for steps >= 2**53).  The reference then starts its windows one frame too
    # late (floor(1.0 * 1) == 1) and can leave frame 0 uncovered, so clamp to
    # the largest float below 1.  Every smaller step gives the exact value.
    return min(reversed_bits / _U64, _BELOW_ONE)


def stride_levels(num_frames: int, length: int, stride: int) -> int:
    """Number of dilation levels actually used: ``min(stride, ceil(log2(L/B)) + 1)``.

    Levels beyond that would only produce windows spanning the clip more than
    twice.  Computed with integers (smallest k with ``B * 2**k >= L``) to avoid
    float ``log2`` edge cases; 1 for clips that fit in one window.
    """
    if num_frames <= length:
        return 1
    ceil_ratio = -(-num_frames // length)
    return min(stride, (ceil_ratio - 1).bit_length() + 1)


def _wrap_position(window: Sequence[int]) -> int | None:
    """Position inside ``window`` where the frame index drops (wraps past the end), or None."""
    for pos in range(1, len(window)):
        if window[pos] < window[pos - 1]:
            return pos
    return None


def _level_windows(num_frames: int, step: int, options: ContextOptions, dilation: int) -> Iterator[list[int]]:
    """Raw windows of one dilation level, frame indexes taken mod ``num_frames``."""
    B, O, L = options.length, options.overlap, num_frames
    phase = ordered_halving(step)
    # round() is Python's round-half-to-even, as in the reference, so pad is
    # bit-for-bit the reference value.
    pad = int(round(L * phase))
    first = int(phase * dilation) + pad
    # Mode A lets starts run one overlap further, creating extra wrap-around windows.
    stop = L + pad + (0 if options.closed_loop == "A" else -O)
    hop = B * dilation - O
    for start in range(first, stop, hop):
        yield [(start + k * dilation) % L for k in range(B)]


def _uniform(num_frames: int, step: int, options: ContextOptions) -> Iterator[list[int]]:
    """The uniform schedule for ``num_frames > options.length`` (duplicates included)."""
    B, O, L = options.length, options.overlap, num_frames
    first_window = list(range(B))
    last_window = list(range(L - B, L))
    for level in range(stride_levels(L, B, options.stride)):
        dilation = 1 << level
        if options.closed_loop != "N" or dilation != 1:
            # Dilated windows wrap in every mode (only N's contiguous level avoids it).
            yield from _level_windows(L, step, options, dilation)
            continue
        # Mode N: replace each wrapping window by the clip's last and/or first
        # window so no contiguous window joins the end of the clip to its start.
        pending_first = False
        for window in _level_windows(L, step, options, dilation):
            wrap = _wrap_position(window)
            if wrap is None:
                yield window
            elif pending_first:
                # The previous wrapping window already emitted the last window.
                pending_first = False
                yield first_window
            elif wrap < B - O:
                # Most of the window lies past the end: emit both ends now.
                yield last_window
                yield first_window
            else:
                # Most of the window lies before the end; the next wrapping
                # window (usually one hop later) supplies the first window.
                pending_first = True
                yield last_window
        if pending_first:
            # No further wrapping window came; the reference dropped the first
            # window here and left the frames it would have covered empty.
            yield first_window


def _dedupe(windows: Iterable[list[int]]) -> list[list[int]]:
    """Drop exact duplicate windows, keeping the first occurrence's order."""
    seen: set[tuple[int, ...]] = set()
    unique = []
    for window in windows:
        key = tuple(window)
        if key not in seen:
            seen.add(key)
            unique.append(window)
    return unique


def context_windows(num_frames: int, step: int, options: ContextOptions) -> list[list[int]]:
    """Frame-index windows the UNet runs on at denoiser call ``step``.

    Args:
        num_frames: frames L of the video (>= 1).
        step: denoiser call counter (0, 1, 2, ...); it only shifts the window grid.
        options: validated :class:`ContextOptions`.

    Returns:
        A non-empty list of windows; every frame of ``range(num_frames)``
        appears in at least one window.  If ``num_frames <= options.length``
        the single window ``[0, ..., num_frames - 1]``; otherwise every window
        has ``options.length`` indexes, all contiguous levels first, then the
        dilated ones.  A dilated window can wrap around the clip end and, when
        ``length * dilation > num_frames``, contain a frame index twice (as in
        the reference); ``fuse.WindowAccumulator`` handles that.

    This is the reference "uniform" schedule with exact duplicates removed and
    mode N's postponed first window flushed (see the module docstring).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if num_frames <= options.length:
        # Stride, overlap and closed loop have nothing to do with one window.
        return [list(range(num_frames))]
    windows = _dedupe(_uniform(num_frames, step, options))
    # Cheap invariant check: an uncovered frame would silently keep no
    # prediction at all, which is far worse than failing loudly.
    covered = set()
    for window in windows:
        covered.update(window)
    if len(covered) != num_frames:
        missing = sorted(set(range(num_frames)) - covered)
        raise RuntimeError(f"context scheduler bug: frames {missing[:10]} not covered ({options}, step {step})")
    return windows



"""Sliding context windows for generating videos longer than the motion module's context.

A motion module attends over at most ``length`` frames at once (its context batch
size, bounded by the position-encoding table it was trained with).  To make a
longer video we run the UNet several times per denoising step, each time on a
*window* of frame indexes, and fuse the per-window predictions back into one
prediction for the whole clip.

This module is pure: it knows nothing about the WebUI, samplers or models.  It
provides

* :class:`ContextOptions` -- the validated user settings;
* :func:`ordered_halving` -- the per-step phase shift of the window grid;
* :func:`context_windows` -- which frames each UNet pass sees at a given step;
* :class:`WindowAccumulator` / :func:`fuse_windows` -- weighted fusion of the
  per-window outputs;
* :func:`describe_windows` -- numbers the UI can show (windows and UNet passes
  per step, effective overlap).

The window schedule follows the "uniform" scheduler of sd-webui-animatediff
v1.13.1 (itself from animatediff-cli), see ``params.md`` section 5.  Deliberate
differences from that reference, all of which only remove waste or fix holes:

* clips no longer than the context give one window of exactly ``num_frames``
  frames (the reference always used ``length`` frames, padding the batch);
* exact duplicate windows are dropped, keeping the first occurrence.  We fuse
  by averaging, so a duplicate would cost a UNet pass and change nothing;
* in closed-loop mode ``"N"``, a "first window" that the reference postponed to
  the next wrapping window is still emitted when no further wrapping window
  comes, so no frame is ever left without a prediction;
* the overlap must be smaller than the context length (the reference crashed
  or silently produced all-zero output otherwise).

``stride`` is the *number of dilation levels* (dilations 1, 2, 4, ...), as the
reference code implements it, not the largest dilation as its README says.
Keeping the code's meaning keeps saved infotexts and API payloads reproducible.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import torch

__all__ = [
    "CLOSED_LOOP_CHOICES",
    "FUSE_CHOICES",
    "ContextOptions",
    "ContextStats",
    "WindowAccumulator",
    "context_windows",
    "describe_windows",
    "fuse_windows",
    "ordered_halving",
    "stride_levels",
    "uniform_windows_reference",
    "window_weights",
]

#: Closed-loop modes.  "N": never wrap single-step windows around the clip end;
#: "R-P"/"R+P": wrap only where a window crosses the end (identical windows, they
#: differ only in prompt-travel wrapping, which is not this module's business);
#: "A": additionally start windows one overlap past the end (more wrapping).
CLOSED_LOOP_CHOICES = ("N", "R-P", "R+P", "A")

#: Fuse methods.  "pyramid": weighted average, window centres count most;
#: "flat": plain average; "last": later windows overwrite earlier ones (reference).
FUSE_CHOICES = ("pyramid", "flat", "last")

_U64 = 1 << 64
_BELOW_ONE = math.nextafter(1.0, 0.0)


def _as_int(name: str, value) -> int:
    """Coerce integral numbers (Gradio ``Number`` gives floats such as 16.0) to int.

    Booleans and non-integral values are rejected so that a wrong field type fails
    loudly instead of being truncated.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    raise ValueError(f"{name} must be an integer, got {value!r}")


@dataclass(frozen=True)
class ContextOptions:
    """Settings of the sliding context scheduler.

    Attributes:
        length: context batch size B, frames per UNet pass (>= 1).
        stride: number of dilation levels, 1 = contiguous windows only (>= 1).
        overlap: frames shared by consecutive windows; -1 means ``length // 4``.
            Once resolved it must be smaller than ``length``.
        closed_loop: one of :data:`CLOSED_LOOP_CHOICES`.
        fuse: one of :data:`FUSE_CHOICES`.
    """

    length: int = 16
    stride: int = 1
    overlap: int = -1
    closed_loop: str = "R-P"
    fuse: str = "pyramid"

    def __post_init__(self):
        # frozen=True forbids normal assignment; coercion of 16.0 -> 16 goes
        # through object.__setattr__, which is the documented escape hatch.
        for name in ("length", "stride", "overlap"):
            object.__setattr__(self, name, _as_int(name, getattr(self, name)))

        if self.length < 1:
            raise ValueError(f"length (context batch size) must be >= 1, got {self.length}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.overlap < -1:
            raise ValueError(f"overlap must be >= -1 (-1 means length // 4), got {self.overlap}")
        if self.resolved_overlap >= self.length:
            # The window hop is length*d - overlap; with overlap >= length the
            # first level's hop is <= 0 and no window sequence makes sense.
            raise ValueError(
                f"overlap must be smaller than length (context batch size) {self.length}, "
                f"i.e. in the range -1..{self.length - 1}, got {self.overlap}"
            )
        if self.closed_loop not in CLOSED_LOOP_CHOICES:
            raise ValueError(
                f"closed_loop must be one of {', '.join(CLOSED_LOOP_CHOICES)}, got {self.closed_loop!r}"
            )
        if self.fuse not in FUSE_CHOICES:
            raise ValueError(f"fuse must be one of {', '.join(FUSE_CHOICES)}, got {self.fuse!r}")

    @property
    def resolved_overlap(self) -> int:
        """The overlap actually used: ``length // 4`` when ``overlap == -1``."""
        return self.length // 4 if self.overlap == -1 else self.overlap


def ordered_halving(step: int) -> float:
    """Bit-reversal of ``step`` as a 64-bit fraction: 0, 1/2, 1/4, 3/4, 1/8, 5/8, ...

    The result is in [0, 1).  Successive sampling steps get phases that keep splitting the largest gap
    left so far, so the window seams visit well-spread positions of the clip
    instead of sitting on the same frames at every step.
    """
    step = _as_int("step", step)
    if not 0 <= step < _U64:
        raise ValueError(f"step must be in 0..2**64-1, got {step}")
    reversed_bits = int(f"{step:064b}"[::-1], 2)
    # Float division rounds values within 2**-54 of 1 up to exactly 1.0 (only
    # for steps >= 2**53).  The reference then starts its windows one frame too
    # late (floor(1.0 * 1) == 1) and can leave frame 0 uncovered, so clamp to
    # the largest float below 1.  Every smaller step gives the exact value.
    return min(reversed_bits / _U64, _BELOW_ONE)


def stride_levels(num_frames: int, options: ContextOptions) -> int:
    """Number of dilation levels actually used: ``min(stride, ceil(log2(L/B)) + 1)``.

    Levels beyond that would only produce windows spanning the clip more than
    twice.  Computed with integers (smallest k with ``B * 2**k >= L``) to avoid
    float ``log2`` edge cases; 1 for clips that fit in one window.
    """
    if num_frames <= options.length:
        return 1
    ceil_ratio = -(-num_frames // options.length)
    return min(options.stride, (ceil_ratio - 1).bit_length() + 1)


def _wrap_position(window: Sequence[int]) -> int | None:
    """Position inside ``window`` where the frame index drops (wraps past the end), or None."""
    for pos in range(1, len(window)):
        if window[pos] < window[pos - 1]:
            return pos
    return None


def _level_windows(num_frames: int, step: int, options: ContextOptions, dilation: int) -> Iterator[list[int]]:
    """Raw windows of one dilation level, frame indexes taken mod ``num_frames``."""
    B, O, L = options.length, options.resolved_overlap, num_frames
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


def _uniform(num_frames: int, step: int, options: ContextOptions, flush_pending_first: bool) -> Iterator[list[int]]:
    """The uniform schedule for ``num_frames > options.length`` (duplicates included)."""
    B, O, L = options.length, options.resolved_overlap, num_frames
    first_window = list(range(B))
    last_window = list(range(L - B, L))
    for level in range(stride_levels(L, options)):
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
        if pending_first and flush_pending_first:
            # No further wrapping window came; the reference dropped the first
            # window here and left the frames it would have covered empty.
            yield first_window


def uniform_windows_reference(num_frames: int, step: int, options: ContextOptions) -> list[list[int]]:
    """The reference (sd-webui-animatediff v1.13.1) schedule, duplicates and all.

    Kept only to test that :func:`context_windows` matches the reference up to
    the documented improvements.  Clips no longer than the context give one
    window of ``options.length`` frames, as the reference did, and mode ``N``
    may leave frames uncovered.
    """
    num_frames = _as_int("num_frames", num_frames)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if num_frames <= options.length:
        return [list(range(options.length))]
    return list(_uniform(num_frames, step, options, flush_pending_first=False))


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
        the reference); :class:`WindowAccumulator` handles that.

    This is the reference "uniform" schedule with exact duplicates removed and
    mode N's postponed first window flushed (see the module docstring).
    """
    num_frames = _as_int("num_frames", num_frames)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if num_frames <= options.length:
        # Stride, overlap and closed loop have nothing to do with one window.
        return [list(range(num_frames))]
    windows = _dedupe(_uniform(num_frames, step, options, flush_pending_first=True))
    # Cheap invariant check: an uncovered frame would silently keep no
    # prediction at all, which is far worse than failing loudly.
    covered = set()
    for window in windows:
        covered.update(window)
    if len(covered) != num_frames:
        missing = sorted(set(range(num_frames)) - covered)
        raise RuntimeError(f"context scheduler bug: frames {missing[:10]} not covered ({options}, step {step})")
    return windows


def window_weights(window_len: int, fuse: str = "pyramid", *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Per-position fusion weights of one window, shape ``[window_len]``, all > 0.

    ``"pyramid"`` is ``min(i + 1, n - i)``: frames near a window's edge were
    denoised with little temporal context on one side, so where windows overlap
    the prediction from the window in which the frame sits more centrally gets
    more say, and window seams blend gradually.  ``"flat"`` (and ``"last"``, for
    which weights are irrelevant) gives ones.
    """
    window_len = _as_int("window_len", window_len)
    if window_len < 1:
        raise ValueError(f"window_len must be >= 1, got {window_len}")
    if fuse not in FUSE_CHOICES:
        raise ValueError(f"fuse must be one of {', '.join(FUSE_CHOICES)}, got {fuse!r}")
    if fuse == "pyramid":
        pos = torch.arange(window_len, dtype=dtype, device=device)
        return torch.minimum(pos + 1, window_len - pos)
    return torch.ones(window_len, dtype=dtype, device=device)


class WindowAccumulator:
    """Fuses per-window predictions into one tensor covering all frames.

    Memory stays at one full-size buffer (plus one weight per frame) however
    many windows are added, so the caller can free each window's output as soon
    as it is added.  The buffer is allocated on the first :meth:`add`, with that
    tensor's shape (frame dimension replaced by ``num_frames``), device and dtype
    (half precision is accumulated in float32 to avoid round-off, and converted
    back in :meth:`result`).

    Args:
        num_frames: frames of the whole clip.
        fuse: one of :data:`FUSE_CHOICES`.
        frame_dim: which dimension of the added tensors indexes frames.
    """

    def __init__(self, num_frames: int, fuse: str = "pyramid", frame_dim: int = 0):
        num_frames = _as_int("num_frames", num_frames)
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        if fuse not in FUSE_CHOICES:
            raise ValueError(f"fuse must be one of {', '.join(FUSE_CHOICES)}, got {fuse!r}")
        self.num_frames = num_frames
        self.fuse = fuse
        self.frame_dim = frame_dim
        self._sum: torch.Tensor | None = None
        self._weight: torch.Tensor | None = None
        self._out_dtype: torch.dtype | None = None

    def _allocate(self, like: torch.Tensor) -> None:
        self.frame_dim = self.frame_dim % like.dim()  # normalise negative dims once
        shape = list(like.shape)
        shape[self.frame_dim] = self.num_frames
        self._out_dtype = like.dtype
        acc_dtype = torch.float32 if like.dtype in (torch.float16, torch.bfloat16) else like.dtype
        self._sum = torch.zeros(shape, dtype=acc_dtype, device=like.device)
        self._weight = torch.zeros(self.num_frames, dtype=acc_dtype, device=like.device)

    def _broadcast(self, per_frame: torch.Tensor) -> torch.Tensor:
        """Reshape a 1-D per-frame tensor so it broadcasts along ``frame_dim``."""
        shape = [1] * self._sum.dim()
        shape[self.frame_dim] = per_frame.numel()
        return per_frame.view(shape)

    def add(self, window: Sequence[int], output: torch.Tensor) -> None:
        """Add the prediction ``output`` for frames ``window`` (in window order).

        ``output.shape[frame_dim]`` must equal ``len(window)``.  A frame listed
        twice in one window contributes twice (weighted fuses) or keeps its
        later position's value (``"last"``).
        """
        if self._sum is None:
            if not -output.dim() <= self.frame_dim < output.dim():
                raise ValueError(f"frame_dim {self.frame_dim} is out of range for a {output.dim()}-D tensor")
            self._allocate(output)
        expected = list(self._sum.shape)
        expected[self.frame_dim] = len(window)
        if list(output.shape) != expected:
            raise ValueError(f"output shape {tuple(output.shape)} does not match window of {len(window)} frames, expected {tuple(expected)}")
        if any(not 0 <= f < self.num_frames for f in window):
            raise ValueError(f"window has frame indexes outside 0..{self.num_frames - 1}: {list(window)}")

        output = output.to(device=self._sum.device, dtype=self._sum.dtype)
        if self.fuse == "last":
            # Keep, per frame, the last position it occupies, so the result does
            # not depend on how index_copy_ orders duplicate writes.
            last_pos = {frame: pos for pos, frame in enumerate(window)}
            frames = torch.tensor(list(last_pos.keys()), dtype=torch.long, device=self._sum.device)
            positions = torch.tensor(list(last_pos.values()), dtype=torch.long, device=self._sum.device)
            self._sum.index_copy_(self.frame_dim, frames, output.index_select(self.frame_dim, positions))
            self._weight[frames] = 1
            return

        idx = torch.tensor(list(window), dtype=torch.long, device=self._sum.device)
        weights = window_weights(len(window), self.fuse, dtype=self._sum.dtype, device=self._sum.device)
        self._sum.index_add_(self.frame_dim, idx, output * self._broadcast(weights))
        self._weight.index_add_(0, idx, weights)

    def covered(self) -> torch.Tensor:
        """Boolean mask ``[num_frames]`` of frames that received at least one window."""
        if self._weight is None:
            return torch.zeros(self.num_frames, dtype=torch.bool)
        return self._weight > 0

    def result(self) -> torch.Tensor:
        """The fused tensor, frames along ``frame_dim``, in the first output's dtype.

        Raises RuntimeError if nothing was added or some frame was never covered:
        returning zeros for it (as the reference could) would ruin the sample.
        """
        if self._sum is None:
            raise RuntimeError("no window output was added")
        missing = (~self.covered()).nonzero().flatten().tolist()
        if missing:
            raise RuntimeError(f"frames {missing[:10]} were not covered by any window")
        if self.fuse == "last":
            fused = self._sum
        else:
            fused = self._sum / self._broadcast(self._weight)
        return fused.to(self._out_dtype)


def fuse_windows(
    outputs: Iterable[tuple[Sequence[int], torch.Tensor]],
    num_frames: int,
    fuse: str = "pyramid",
    frame_dim: int = 0,
) -> torch.Tensor:
    """Fuse ``(window, output)`` pairs in one call; see :class:`WindowAccumulator`."""
    acc = WindowAccumulator(num_frames, fuse, frame_dim)
    for window, output in outputs:
        acc.add(window, output)
    return acc.result()


@dataclass(frozen=True)
class ContextStats:
    """What the scheduler will do, for display.  See :func:`describe_windows`."""

    num_frames: int
    length: int
    overlap: int
    stride_levels: int
    steps: int
    windows_per_step: tuple[int, ...] = field(repr=False)
    frames_per_pass: int = 0

    @property
    def single_window(self) -> bool:
        return self.num_frames <= self.length

    @property
    def min_windows(self) -> int:
        return min(self.windows_per_step)

    @property
    def max_windows(self) -> int:
        return max(self.windows_per_step)

    @property
    def total_passes(self) -> int:
        """UNet passes over all steps (each pass = one window; doubled rows with batched CFG)."""
        return sum(self.windows_per_step)

    @property
    def evaluations_per_frame(self) -> float:
        """Average times a frame is predicted per step (1.0 = no overlap at all)."""
        return self.total_passes * self.frames_per_pass / (self.steps * self.num_frames)

    def __str__(self) -> str:
        if self.single_window:
            return (f"{self.num_frames} frames fit in one context of {self.length}: "
                    f"1 UNet pass per step; stride, overlap and closed loop have no effect.")
        per_step = (str(self.min_windows) if self.min_windows == self.max_windows
                    else f"{self.min_windows}-{self.max_windows}")
        return (f"{self.num_frames} frames, context {self.length}, overlap {self.overlap}, "
                f"{self.stride_levels} stride level(s): {per_step} windows (UNet passes) per step, "
                f"{self.total_passes} passes over {self.steps} step(s); "
                f"each frame is predicted {self.evaluations_per_frame:.2f}x per step on average.")


def describe_windows(num_frames: int, options: ContextOptions, steps: int = 1) -> ContextStats:
    """Summarise the schedule over denoiser calls ``0 .. steps-1`` (``str()`` it for the UI)."""
    steps = _as_int("steps", steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    counts = tuple(len(context_windows(num_frames, s, options)) for s in range(steps))
    return ContextStats(
        num_frames=num_frames,
        length=options.length,
        overlap=options.resolved_overlap,
        stride_levels=stride_levels(num_frames, options),
        steps=steps,
        windows_per_step=counts,
        frames_per_pass=min(num_frames, options.length),
    )

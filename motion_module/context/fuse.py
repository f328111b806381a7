"""Fusing per-window UNet outputs into one prediction per frame.

Where context windows overlap, a frame gets several predictions per step.
``FUSES`` names the ways to combine them; each weight function is short and
pure, and ``WindowAccumulator`` applies one while keeping memory at a single
full-size buffer however many windows there are.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

Weights = Callable[..., torch.Tensor]


def pyramid_weights(window_len: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """``min(i + 1, n - i)``: frames near a window's edge were denoised with
    little temporal context on one side, so where windows overlap the window
    in which a frame sits more centrally gets more say, and seams blend."""
    pos = torch.arange(window_len, dtype=dtype, device=device)
    return torch.minimum(pos + 1, window_len - pos)


def flat_weights(window_len: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """A plain average."""
    return torch.ones(window_len, dtype=dtype, device=device)


#: Fuse name -> per-position weights of one window; None = later windows
#: overwrite earlier ones (the reference extension's behaviour). The only
#: place the fuse methods are declared.
FUSES: dict[str, Weights | None] = {
    "pyramid": pyramid_weights,
    "flat": flat_weights,
    "last": None,
}


def fuse_weights(fuse: str) -> Weights | None:
    try:
        return FUSES[fuse]
    except KeyError:
        raise ValueError(f"fuse must be one of {', '.join(FUSES)}, got {fuse!r}") from None


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
        fuse: one of :data:`FUSES`.
        frame_dim: which dimension of the added tensors indexes frames.
    """

    def __init__(self, num_frames: int, fuse: str = "pyramid", frame_dim: int = 0):
        self.weights = fuse_weights(fuse)
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
        if self.weights is None:
            # Keep, per frame, the last position it occupies, so the result does
            # not depend on how index_copy_ orders duplicate writes.
            last_pos = {frame: pos for pos, frame in enumerate(window)}
            frames = torch.tensor(list(last_pos.keys()), dtype=torch.long, device=self._sum.device)
            positions = torch.tensor(list(last_pos.values()), dtype=torch.long, device=self._sum.device)
            self._sum.index_copy_(self.frame_dim, frames, output.index_select(self.frame_dim, positions))
            self._weight[frames] = 1
            return

        idx = torch.tensor(list(window), dtype=torch.long, device=self._sum.device)
        weights = self.weights(len(window), dtype=self._sum.dtype, device=self._sum.device)
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
        if self.weights is None:
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

"""Running a long video through the UNet in context windows.

The motion module only sees as many frames as its position encoding covers
(and memory grows with the frames per pass). For longer videos each UNet call
is split into windows of frames (chosen by `plan.context_windows`), every
window runs through the whole injected UNet, and the per-frame outputs are
fused with weights. This happens inside the UNet call, so it does not matter
how the sampler batches cond and uncond: every row block of `frames` rows is
one video and gets the same windows.
"""

import torch

from .fuse import WindowAccumulator
from .plan import context_windows


def _take_rows(value, index, rows):
    """Slice every per-row input (timesteps, text context, ControlNet hints...)."""
    if isinstance(value, torch.Tensor):
        return value.index_select(0, index.to(value.device)) if value.dim() and value.shape[0] == rows else value
    if isinstance(value, dict):
        return {k: _take_rows(v, index, rows) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_take_rows(v, index, rows) for v in value)
    return value


def call_timestep(args, kwargs):
    """The timestep of a UNet call (its first row's), as a float; None if it has none."""
    t = args[0] if args else kwargs.get("timesteps")
    if isinstance(t, torch.Tensor):
        return float(t.reshape(-1)[0]) if t.numel() else None
    return float(t) if isinstance(t, (int, float)) else None


class WindowRunner:
    def __init__(self, options):
        self.options = options
        self.length = options.length
        self._step = -1
        self._last_timestep = object()

    def _next_step(self, args, kwargs) -> int:
        # The scheduler shifts windows every sampling step. A step is "the
        # timestep changed": cond and uncond sent in separate calls at the same
        # timestep must get the same windows.
        t = call_timestep(args, kwargs)
        if t != self._last_timestep:
            self._step += 1
            self._last_timestep = t
        return max(self._step, 0)

    def __call__(self, call, x, frames, args, kwargs):
        """`call(window_frames, x, args, kwargs, frame_index)` runs one window;
        `frame_index` says which frame of the video each of its rows is."""
        rows = x.shape[0]
        videos = rows // frames
        step = self._next_step(args, kwargs)
        fused = WindowAccumulator(frames, self.options.fuse, frame_dim=1)
        for window in context_windows(frames, step, self.options):
            offsets = torch.arange(videos, device=x.device).repeat_interleave(len(window)) * frames
            index = torch.tensor(window, device=x.device).repeat(videos) + offsets
            y = call(len(window), x.index_select(0, index),
                     _take_rows(args, index, rows), _take_rows(kwargs, index, rows), index % frames)
            fused.add(window, y.view(videos, len(window), *y.shape[1:]))
        out = fused.result()
        return out.reshape(rows, *out.shape[2:])

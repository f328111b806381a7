"""The temporal layers of a SparseCtrl encoder (SD1.5): ControlNet builds the
encoder and appends these to its input blocks, where they are called as
`layer(x)`. The frame count of the call comes from whoever runs the video
(`frames_of`), as ControlNet passes none.

Layout: `down_blocks.{0-3}.motion_modules.{0,1}`, each a motion module with one
attention block and a 32-frame position encoding (`sparsectrl_*.json`).
"""

from typing import Callable

import torch
from torch import nn

from .layers import MotionModule

CHANNELS = (320, 640, 1280, 1280)
MAX_FRAMES = 32


class SparseCtrlLayer(MotionModule):
    def __init__(self, channels: int, frames_of: Callable[[torch.Tensor], int]):
        super().__init__(channels, MAX_FRAMES, attention_blocks=1)
        self._frames_of = frames_of

    def forward(self, x, frames: int | None = None, scale: float = 1.0):
        return super().forward(x, frames or self._frames_of(x), scale)


class SparseCtrlBlock(nn.Module):
    def __init__(self, channels: int, frames_of):
        super().__init__()
        self.motion_modules = nn.ModuleList(SparseCtrlLayer(channels, frames_of) for _ in range(2))


class SparseCtrlMotion(nn.Module):
    def __init__(self, frames_of: Callable[[torch.Tensor], int]):
        super().__init__()
        self.down_blocks = nn.ModuleList(SparseCtrlBlock(c, frames_of) for c in CHANNELS)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """The files store each position encoding; ours is the same sinusoid,
        computed, so those entries are checked for shape and dropped."""
        own = {}
        for key, value in state_dict.items():
            if key.endswith("pos_encoder.pe"):
                if value.shape[1] != MAX_FRAMES:
                    raise ValueError(f"SparseCtrl position encoding {key} has {value.shape[1]} frames, "
                                     f"expected {MAX_FRAMES}")
                continue
            own[key] = value
        return super().load_state_dict(own, strict=strict, assign=assign)

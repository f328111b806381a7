"""MotionModel: every motion module of one checkpoint, organised like the file.

`down_blocks[i].motion_modules[j]`, `up_blocks[i].motion_modules[j]` and the
optional `mid_block.motion_modules[0]` give exactly the official key names.
"""

from torch import nn

from .kinds import MotionKind
from .layers import MotionModule

DOWN_MODULES_PER_LEVEL = 2
UP_MODULES_PER_LEVEL = 3


class MotionBlock(nn.Module):
    def __init__(self, channels: int, count: int, max_len: int, norm_over_frames: bool):
        super().__init__()
        self.motion_modules = nn.ModuleList(
            MotionModule(channels, max_len, norm_over_frames) for _ in range(count))


class MotionModel(nn.Module):
    def __init__(self, kind: MotionKind, max_frames: int, channels=None):
        """`channels` (per UNet level) defaults to the official widths; smaller
        widths are for tests and demos on reduced UNets."""
        super().__init__()
        self.kind_info = kind
        over = kind.module_norm_over_frames
        channels = tuple(channels or kind.channels)
        if len(channels) != len(kind.channels):
            raise ValueError(f"{kind.name} has {len(kind.channels)} levels, got channels {channels}")
        self.down_blocks = nn.ModuleList(
            MotionBlock(c, DOWN_MODULES_PER_LEVEL, max_frames, over) for c in channels)
        self.up_blocks = nn.ModuleList(
            MotionBlock(c, UP_MODULES_PER_LEVEL, max_frames, over) for c in reversed(channels))
        self.mid_block = MotionBlock(channels[-1], 1, max_frames, over) if kind.has_mid else None
        # File name (set by the loader) and sha256 (set by whoever hashed the
        # file), for infotexts.
        self.name = ""
        self.sha256 = ""

    @property
    def kind(self) -> str:
        return self.kind_info.name

    @property
    def is_sdxl(self) -> bool:
        return self.kind_info.is_sdxl

    @property
    def max_frames(self) -> int:
        return self.down_blocks[0].motion_modules[0].max_frames

    @property
    def joint_groupnorm(self) -> bool:
        return self.kind_info.joint_groupnorm

    def down_modules(self):
        return [m for block in self.down_blocks for m in block.motion_modules]

    def up_modules(self):
        return [m for block in self.up_blocks for m in block.motion_modules]

    def mid_module(self):
        return self.mid_block.motion_modules[0] if self.mid_block is not None else None

    def extra_repr(self) -> str:
        return f"kind={self.kind}, max_frames={self.max_frames}, name={self.name!r}"

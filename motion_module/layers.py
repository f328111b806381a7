"""The temporal transformer that AnimateDiff inserts into the UNet.

Attribute names mirror the official state-dict keys
(`temporal_transformer.transformer_blocks.0.attention_blocks.1.to_q.weight`...)
so checkpoints load with a strict `load_state_dict`.

Tensor layout: the UNet hands us `(videos * frames, C, H, W)`, video-major.
Attention runs across frames, independently at every spatial position, so the
transformer works on `(videos * H * W, frames, C)` sequences. Everything after
the input GroupNorm is per token or per sequence, which lets us process the
positions in chunks and keep peak memory bounded at any resolution.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

# Budget for one chunk of the temporal transformer, in activation elements of
# its widest intermediate (the GEGLU projection, 8*C per token). 2**25 floats
# is 128 MiB in fp32: big enough to keep matmuls efficient, small enough that a
# 1024x1024 SDXL frame batch never allocates gigabytes at once.
CHUNK_ELEMENTS = 2 ** 25


def sinusoidal_position_encoding(length: int, channels: int) -> torch.Tensor:
    """pe[0, p, 2i] = sin(p / 10000^(2i/C)), pe[0, p, 2i+1] = cos(...), shape (1, L, C)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    inv_freq = torch.exp(torch.arange(0, channels, 2, dtype=torch.float32) * (-math.log(10000.0) / channels))
    pe = torch.zeros(1, length, channels)
    pe[0, :, 0::2] = torch.sin(position * inv_freq)
    pe[0, :, 1::2] = torch.cos(position * inv_freq)
    return pe


class PositionalEncoding(nn.Module):
    def __init__(self, channels: int, max_len: int):
        super().__init__()
        # Not persistent: the loader copies the file's table in itself, so a
        # file without one (AnimateLCM) and a file with one load the same way.
        self.register_buffer("pe", sinusoidal_position_encoding(max_len, channels), persistent=False)

    @property
    def max_len(self) -> int:
        return self.pe.shape[1]

    def forward(self, x):
        return x + self.pe[:, : x.shape[1]].to(x.dtype)


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        return hidden * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        # index 1 is the (inference-time no-op) dropout of the official layout,
        # kept so that the second linear is `net.2` as in the checkpoints.
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim))

    def forward(self, x):
        return self.net(x)


class TemporalSelfAttention(nn.Module):
    """Multi-head self-attention across the frame axis of `(sequences, frames, C)`."""

    def __init__(self, dim: int, heads: int, max_len: int):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])
        self.pos_encoder = PositionalEncoding(dim, max_len)

    def forward(self, x):
        n, f, c = x.shape
        x = self.pos_encoder(x)
        q, k, v = (proj(x).view(n, f, self.heads, c // self.heads).transpose(1, 2)
                   for proj in (self.to_q, self.to_k, self.to_v))
        # SDPA's default scale is 1/sqrt(head_dim), the official scale.
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(n, f, c)
        return self.to_out[0](out)


class TemporalTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, max_len: int, attention_blocks: int = 2):
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            TemporalSelfAttention(dim, heads, max_len) for _ in range(attention_blocks))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(attention_blocks))
        self.ff = FeedForward(dim)
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x):
        for attention, norm in zip(self.attention_blocks, self.norms):
            x = attention(norm(x)) + x
        return self.ff(self.ff_norm(x)) + x


class TemporalTransformer(nn.Module):
    def __init__(self, dim: int, max_len: int, heads: int = 8, norm_over_frames: bool = False,
                 attention_blocks: int = 2):
        super().__init__()
        self.norm_over_frames = norm_over_frames
        self.norm = nn.GroupNorm(32, dim, eps=1e-6)
        self.proj_in = nn.Linear(dim, dim)
        self.transformer_blocks = nn.ModuleList([TemporalTransformerBlock(dim, heads, max_len, attention_blocks)])
        self.proj_out = nn.Linear(dim, dim)

    def _normalise(self, x, frames):
        if not self.norm_over_frames:
            return self.norm(x)
        bf, c, h, w = x.shape
        joint = x.view(bf // frames, frames, c, h * w).transpose(1, 2)
        return self.norm(joint).transpose(1, 2).reshape(bf, c, h, w)

    def forward(self, x, frames: int, scale: float = 1.0):
        bf, c, h, w = x.shape
        videos = bf // frames
        hidden = self._normalise(x, frames)
        # (videos, frames, C, HW) -> (videos * HW, frames, C): one sequence per position.
        seqs = hidden.view(videos, frames, c, h * w).permute(0, 3, 1, 2).reshape(videos * h * w, frames, c)
        out = torch.empty_like(seqs)
        rows = max(1, CHUNK_ELEMENTS // (frames * 8 * c))
        for start in range(0, seqs.shape[0], rows):
            chunk = self.proj_in(seqs[start:start + rows])
            for block in self.transformer_blocks:
                chunk = block(chunk)
            out[start:start + rows] = self.proj_out(chunk)
        out = out.view(videos, h * w, frames, c).permute(0, 2, 3, 1).reshape(bf, c, h, w)
        # Motion scale multiplies the residual, so 1 is the module as trained
        # and 0 leaves the image model's features untouched.
        return (out if scale == 1.0 else out * scale) + x


class MotionModule(nn.Module):
    """One `motion_modules.N` entry: a residual temporal transformer."""

    def __init__(self, dim: int, max_len: int, norm_over_frames: bool = False, attention_blocks: int = 2):
        """`attention_blocks`: 2 in every motion module; SparseCtrl's encoder has 1."""
        super().__init__()
        self.temporal_transformer = TemporalTransformer(dim, max_len, norm_over_frames=norm_over_frames,
                                                        attention_blocks=attention_blocks)

    @property
    def channels(self) -> int:
        return self.temporal_transformer.proj_in.in_features

    @property
    def max_frames(self) -> int:
        return self.temporal_transformer.transformer_blocks[0].attention_blocks[0].pos_encoder.max_len

    def forward(self, x, frames: int, scale: float = 1.0):
        if scale == 0.0:
            return x
        dtype = x.dtype
        # The norms' dtype, not a Linear's: Linear weights may be stored in fp8.
        compute_dtype = self.temporal_transformer.norm.weight.dtype
        return self.temporal_transformer(x.to(compute_dtype), frames, scale).to(dtype)

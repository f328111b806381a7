"""Reused features, one entry per UNet row: (video block, frame, conditioning,
latent size).

A row is known by what it computes, not by where it sits in a call: the
frame it shows (context windows move every step), its block of `frames` rows
in the call (cond, uncond, each video of the batch; the WebUI may send cond
and uncond together or one by one) and exact values of its conditioning (so
cond and uncond sent in separate calls, or a prompt that changes mid-way with
prompt editing, never share an entry). A frame that several windows of one
evaluation computed keeps the mean of its features.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Entry:
    feature: torch.Tensor
    generation: int  # the UNet evaluation that wrote it
    step: int
    count: int = 1


def _token_positions(length: int) -> list[int]:
    # CLIP attends causally: the last token of each 77-token chunk depends on
    # every token of its chunk; 1 and the middle add cheap certainty.
    positions = {min(1, length - 1), length // 2, length - 1, *range(76, length, 77)}
    return sorted(positions)


def signatures(rows: int, context=None, y=None) -> list[bytes]:
    """Exact bytes of each row's conditioning (a few token vectors of the text
    context, and SDXL's vector), equal for equal conditionings only."""
    parts = []
    if isinstance(context, torch.Tensor) and context.dim() == 3 and context.shape[0] == rows:
        parts.append(context[:, _token_positions(context.shape[1])].reshape(rows, -1))
    if isinstance(y, torch.Tensor) and y.dim() >= 1 and y.shape[0] == rows:
        parts.append(y.reshape(rows, -1).to(parts[0].dtype if parts else y.dtype))
    if not parts:
        return [b""] * rows
    values = torch.cat(parts, dim=1).detach().to("cpu", torch.float32).contiguous().numpy()
    return [row.tobytes() for row in values]


class FeatureStore:
    def __init__(self):
        self.entries: dict[tuple, Entry] = {}
        self.shapes: dict[tuple, tuple] = {}  # (block hook id, latent size) -> output shape without rows
        self.generation = 0

    def clear(self):
        self.entries.clear()
        self.shapes.clear()

    def next_generation(self):
        self.generation += 1

    def put(self, keys, features: torch.Tensor, step: int):
        stored = features.detach().clone()  # one copy; the rows are views of it
        for row, key in enumerate(keys):
            feature = stored[row]
            entry = self.entries.get(key)
            if entry is None or entry.generation != self.generation:
                self.entries[key] = Entry(feature, self.generation, step)
            else:
                entry.count += 1
                entry.feature = entry.feature + (feature - entry.feature) / entry.count
                entry.step = step

    def get(self, keys, fresh_since: int):
        """The stacked features of `keys`, or None if any row has no entry
        written at or after step `fresh_since`."""
        found = []
        for key in keys:
            entry = self.entries.get(key)
            if entry is None or entry.step < fresh_since:
                return None
            found.append(entry.feature)
        return torch.stack(found)

    def note_shape(self, hook_id, size, shape):
        self.shapes[(hook_id, size)] = tuple(shape)

    def shape(self, hook_id, size):
        """The block's output shape at the last full step, or None if it did not run then."""
        return self.shapes.get((hook_id, size))

    def nbytes(self) -> int:
        return sum(e.feature.numel() * e.feature.element_size() for e in self.entries.values())

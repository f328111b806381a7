"""The step cache of one UNet for one run: hooks, clock and stored features."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..context.runner import call_timestep
from .blocks import BlockHook, control_deep_blocks, deep_blocks
from .plan import CacheOptions, StepClock, is_full_step
from .store import FeatureStore, signatures

log = logging.getLogger("animatediff")


@dataclass
class _Call:
    mode: str  # "full" (run everything, store) or "cached" (shallow blocks only)
    keys: list
    size: tuple
    step: int
    features: torch.Tensor | None = None


def _argument(args, kwargs, position, name):
    if len(args) > position:
        return args[position]
    return kwargs.get(name)


class StepCache:
    """Attach for one run, call `new_sampling` when a sampler starts, enter
    `call(...)` around each inner UNet call (the injection does), detach in a
    `finally`. Detaching removes every hook and frees every feature."""

    def __init__(self, unet, options: CacheOptions):
        self.options = options
        self.skipped, self.boundary = deep_blocks(unet, options.depth)
        self._input_blocks = len(unet.input_blocks)
        self.store = FeatureStore()
        self.clock = StepClock()
        self.hooks: list[BlockHook] = []
        self.decisions: list[tuple[int, str]] = []  # (step, mode) of each inner call, for reports and tests
        self.peak_bytes = 0  # the most feature memory held at once in this run
        self._call: _Call | None = None

    # -- lifetime ----------------------------------------------------------
    def attach(self, control_networks=()):
        """Hook the deep blocks, and those of each control network (ControlNet's
        layout, see `control_deep_blocks`) that run inside the UNet's calls:
        on cached steps their deep residuals would feed only skipped blocks."""
        if self.hooks:
            return self
        blocks = {id(block): block for block in self.skipped}
        for network in control_networks:
            for block in control_deep_blocks(network, self.options.depth, self._input_blocks):
                blocks.setdefault(id(block), block)
        try:
            for block in blocks.values():
                hook = BlockHook(block, self._route)
                hook.attach()
                self.hooks.append(hook)
        except BaseException:
            self.detach()
            raise
        self.decisions = []
        self.peak_bytes = 0
        return self

    def detach(self):
        for hook in reversed(self.hooks):
            hook.detach()
        self.hooks.clear()
        self.store.clear()
        self._call = None

    def new_sampling(self, schedule=None, steps=None):
        """A sampler starts: its schedule (timesteps as the UNet receives them,
        any order) and step count, when the caller knows them."""
        self.clock = StepClock(schedule, steps)
        self.store.clear()

    def begin_eval(self):
        """One UNet evaluation starts (all its windows follow)."""
        self.store.next_generation()

    @property
    def feature_bytes(self) -> int:
        return self.store.nbytes()

    def counts(self) -> dict:
        out = {"full": 0, "cached": 0}
        for _, mode in self.decisions:
            out[mode] += 1
        return out

    # -- one inner UNet call -------------------------------------------------
    def _last_full(self, step: int, steps: int) -> int:
        while step > 0 and not is_full_step(step, self.options, steps):
            step -= 1
        return step

    @contextmanager
    def call(self, x, args, kwargs, frame_index, call_frames: int):
        """Around one UNet call whose row r shows frame `frame_index[r]` of a
        block of `call_frames` rows: decides full or cached for it."""
        t = call_timestep(args, kwargs)
        if t is None or not self.hooks:
            yield
            return
        if self.clock.restarts(t):
            self.clock = StepClock(self.clock.schedule, self.clock.steps)
            self.store.clear()
        step = self.clock.step(t)
        steps = self.clock.steps if self.clock.steps is not None else step + 1
        size = tuple(x.shape[2:])
        frames = frame_index.tolist()
        conditioning = signatures(x.shape[0], _argument(args, kwargs, 1, "context"), _argument(args, kwargs, 2, "y"))
        keys = [(row // call_frames, frame, sig, size) for row, (frame, sig) in enumerate(zip(frames, conditioning))]
        current = _Call("full", keys, size, step)
        if not is_full_step(step, self.options, steps):
            features = self.store.get(keys, self._last_full(step, steps))
            if features is not None:
                current = _Call("cached", keys, size, step, features)
        self.decisions.append((step, current.mode))
        self._call = current
        try:
            yield
        finally:
            self._call = None

    def _route(self, hook: BlockHook, x, *args, **kwargs):
        current = self._call
        if current is None:
            return hook._call_block(x, *args, **kwargs)
        if current.mode == "full":
            out = hook._call_block(x, *args, **kwargs)
            self.store.note_shape(id(hook), current.size, out.shape[1:])
            if hook.block is self.boundary:
                self.store.put(current.keys, out, current.step)
                self.peak_bytes = max(self.peak_bytes, self.store.nbytes())
            return out
        if hook.block is self.boundary:
            return current.features.to(device=x.device, dtype=x.dtype)
        shape = self.store.shape(id(hook), current.size)
        if shape is None:  # a control network that did not run at the last full step
            return hook._call_block(x, *args, **kwargs)
        # Skipped: only the shape matters to the code between the blocks (a
        # concatenation, ControlNet's residual sums); zero strides cost nothing.
        return x.new_zeros(()).expand(x.shape[0], *shape)

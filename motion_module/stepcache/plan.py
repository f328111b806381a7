"""Which sampling steps run the whole UNet: pure functions of the options,
the step index and the sampler's schedule.

A step is found from the noise level of a UNet call, never by counting calls:
samplers that evaluate the UNet more than once per step (Heun, DPM2, DPM++ 2S
and SDE) evaluate between two schedule points, or on the next one, and every
window and every cond/uncond call of a step sees the same timestep.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

# Timesteps are floats in [0, 1000); two calls of one step carry the same
# value up to float noise, two schedule points are much further apart.
_TOLERANCE = 1e-3


@dataclass(frozen=True)
class CacheOptions:
    """interval: a full step every `interval` steps (1 = no caching).
    depth: the shallow blocks that always run: input blocks 0..depth and the
        output blocks that mirror them; the features entering the first of
        those output blocks are reused.
    early: share of the first steps that always run in full (the layout of
        the picture is decided there)."""

    interval: int = 1
    depth: int = 0
    early: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.interval > 1


def early_steps(options: CacheOptions, steps: int) -> int:
    return min(steps, math.ceil(options.early * steps - 1e-9)) if steps > 0 else 0


def is_full_step(step: int, options: CacheOptions, steps: int) -> bool:
    """Step `step` (0-based) of `steps` runs the whole UNet."""
    early = early_steps(options, steps)
    return step < early or (step - early) % max(options.interval, 1) == 0


def full_steps(options: CacheOptions, steps: int) -> list[int]:
    return [i for i in range(steps) if is_full_step(i, options, steps)]


def step_of(timestep: float, schedule: Sequence[float]) -> int:
    """The step a call at `timestep` belongs to: the first schedule point it
    equals (a stage on a point belongs to that point's step; a schedule may
    end in repeated points), else the last point above it (a sampler's stage
    between two points belongs to the earlier one). `schedule` is decreasing."""
    for i, point in enumerate(schedule):
        if abs(point - timestep) <= _TOLERANCE:
            return i
    return max(sum(1 for point in schedule if point > timestep) - 1, 0)


class StepClock:
    """The step of each UNet call of one sampling.

    With the sampler's schedule the step is `step_of` it. Without one (a
    sampler whose schedule the WebUI glue cannot see) a new step starts when
    the timestep changes, which is exact for first-order samplers. A call at
    a higher timestep than the one before starts a new sampling (hires fix's
    second pass, a FreeInit iteration, a restart)."""

    def __init__(self, schedule: Sequence[float] | None = None, steps: int | None = None):
        self.schedule = sorted((float(t) for t in schedule if math.isfinite(float(t))), reverse=True) \
            if schedule else None
        self.steps = steps if steps is not None else (len(self.schedule) - 1 if self.schedule else None)
        self._last = None
        self._counted = -1

    def restarts(self, timestep: float) -> bool:
        return self._last is not None and timestep > self._last + _TOLERANCE

    def step(self, timestep: float) -> int:
        if self.schedule is not None:
            self._last = timestep
            return step_of(timestep, self.schedule)
        if self._last is None or abs(timestep - self._last) > _TOLERANCE:
            self._counted += 1
        self._last = timestep
        return self._counted

"""Motion-compensated in-between frames from OpenCV's dense optical flow.

    pair = flow_pair(a, b)          # once per neighbouring pair (two flows)
    mid = in_between(pair, t)       # any 0 < t < 1, as often as needed

a and b are HxWx3 uint8 RGB arrays; the result is one too.  No model
weights: only cv2 and numpy.

1. Flow both ways with DIS (`cv2.DISOpticalFlow`): ab maps a's pixels to
   b, ba maps b's pixels to a.
2. Occlusion: a pixel of a whose flow, followed to b and back, does not
   return (the forward/backward check) or leaves the image has no match in
   b: it is visible in a only.  The same for b.  DIS gives such pixels the
   motion of their neighbours, mostly of the object that covers them; they
   take the flow of the nearest pixel that passed the check instead.
3. For each pixel p of the frame at time t, where it was in a (p + v0) and
   will be in b (p + v1): the fixed points v0 = -t*ab(p + v0) and
   v1 = -(1-t)*ba(p + v1), found by a few iterations.  Unlike sampling the
   flows at p itself, this follows the motion of the content that actually
   lands on p, so moving edges stay sharp.
4. Warp a and b to time t (cv2.remap) and blend them by time, but away
   from a frame whose sample failed the check (its motion is a guess), from
   one where the fixed point did not settle (nothing there moves to p: it
   is hidden in that frame), and never from a sample whose source lies
   outside the image (borders).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Tuned with benchmarks/interpolation.py (pan and zoom of photographs) and
# tests/test_flow_interpolation.py's object moving over a background.
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST
DIS_FINEST_SCALE = 0  # full resolution, not the preset's 1/4: sharper motion boundaries, a pair takes ~2x as long
FIXED_POINT_ITERATIONS = 4
CONSISTENCY_ALPHA, CONSISTENCY_BETA = 0.01, 0.5  # Sundaram et al. 2010: |f+b|^2 < a(|f|^2+|b|^2) + b
REFILL_ABOVE = 0.2  # unmatched() above this: the flow is replaced by the nearest matched pixel's
UNMATCHED_PENALTY = 2.0  # weight ratio up to e^(2*2) ~ 55 towards the frame whose sample matched
RESIDUAL_PX = 1.0  # a fixed point off by this many pixels keeps e^-1 ~ 37% of its weight
MIN_SIDE = 16  # DIS needs an image larger than its patch; smaller frames cross-fade


@dataclass(frozen=True)
class FlowPair:
    a: np.ndarray  # HxWx3 float32
    b: np.ndarray
    ab: np.ndarray  # HxWx2 float32 (dx, dy): a(p) ~ b(p + ab(p))
    ba: np.ndarray
    only_a: np.ndarray  # HxW float32 in [0, 1]: a's pixel has no match in b
    only_b: np.ndarray


def estimate_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense flow from RGB uint8 `a` to `b` (HxWx2, pixels)."""
    h, w = a.shape[:2]
    if min(h, w) < MIN_SIDE:
        return np.zeros((h, w, 2), np.float32)
    dis = cv2.DISOpticalFlow_create(DIS_PRESET)
    dis.setFinestScale(DIS_FINEST_SCALE)
    gray = [cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in (a, b)]
    return dis.calc(gray[0], gray[1], None)


def _grid(h: int, w: int) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.dstack([xs, ys])


def _sample(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    # Replicated edges, never black: samples outside get no weight anyway.
    return cv2.remap(image, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _inside(where: np.ndarray, h: int, w: int) -> np.ndarray:
    """1 inside the image, falling to 0 one pixel outside (no hard seam)."""
    x, y = where[..., 0], where[..., 1]
    margin = np.minimum(np.minimum(x, w - 1 - x), np.minimum(y, h - 1 - y))
    return np.clip(1.0 + margin, 0.0, 1.0)


def unmatched(forward: np.ndarray, backward: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """How surely each pixel has no match in the other frame (0..1).

    Following `forward` then `backward` should come back; the tolerance grows
    with the motion because flow errors do.  A target outside the image
    means the content leaves the frame: no match either."""
    target = grid + forward
    back = _sample(backward, target)
    error = np.sum((forward + back) ** 2, axis=-1)
    tolerance = CONSISTENCY_ALPHA * (np.sum(forward ** 2, axis=-1) + np.sum(back ** 2, axis=-1)) + CONSISTENCY_BETA
    mismatch = np.clip(np.sqrt(error / tolerance) - 1.0, 0.0, 1.0)
    h, w = forward.shape[:2]
    return np.maximum(mismatch, 1.0 - _inside(target, h, w)).astype(np.float32)


def refill(flow: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Each `bad` pixel takes the flow of the nearest pixel that is not."""
    if not bad.any() or bad.all():
        return flow
    # Labels number the good pixels in row-major order (1, 2, ...): the
    # nearest good pixel of every pixel, in one C pass.
    _, labels = cv2.distanceTransformWithLabels(bad.astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(~bad)
    return flow[ys[labels - 1], xs[labels - 1]]


def flow_pair(a: np.ndarray, b: np.ndarray) -> FlowPair:
    """Everything about a pair that does not depend on t."""
    ab, ba = estimate_flow(a, b), estimate_flow(b, a)
    grid = _grid(*a.shape[:2])
    only_a, only_b = unmatched(ab, ba, grid), unmatched(ba, ab, grid)
    return FlowPair(a.astype(np.float32), b.astype(np.float32), refill(ab, only_a > REFILL_ABOVE),
                    refill(ba, only_b > REFILL_ABOVE), only_a, only_b)


def _to_time(flow: np.ndarray, s: float, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """v with v = -s * flow(p + v), and how far the last step still moved (px)."""
    v = -s * flow
    for _ in range(FIXED_POINT_ITERATIONS):
        v = -s * _sample(flow, grid + v)
    step = v + s * _sample(flow, grid + v)
    return v, cv2.magnitude(step[..., 0], step[..., 1])


def in_between(pair: FlowPair, t: float) -> np.ndarray:
    """The frame at time t (0 = a, 1 = b), HxWx3 uint8."""
    h, w = pair.a.shape[:2]
    grid = _grid(h, w)
    v0, r0 = _to_time(pair.ab, t, grid)
    v1, r1 = _to_time(pair.ba, 1.0 - t, grid)
    from_a, from_b = grid + v0, grid + v1
    warped_a, warped_b = _sample(pair.a, from_a), _sample(pair.b, from_b)
    # Where the two flows disagree, trust the frame whose sample matched.
    side = UNMATCHED_PENALTY * (_sample(pair.only_b, from_b) - _sample(pair.only_a, from_a))
    w0 = (1.0 - t) * _inside(from_a, h, w) * np.exp(side - (r0 / RESIDUAL_PX) ** 2)
    w1 = t * _inside(from_b, h, w) * np.exp(-side - (r1 / RESIDUAL_PX) ** 2)
    # A pixel neither warp can vouch for (both sources outside) cross-fades.
    eps = 1e-4
    w0, w1 = w0 + eps * (1.0 - t), w1 + eps * t
    out = (w0[..., None] * warped_a + w1[..., None] * warped_b) / (w0 + w1)[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)

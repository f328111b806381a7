"""Synthetic video frames for the writer tests: smooth, moving, easy to compare."""

import numpy as np
from PIL import Image


def moving_gradient(n, w=48, h=32):
    """n RGB frames of gradients that shift a little each frame (so codecs
    see real motion, and lossy output can still be compared to the input)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for i in range(n):
        r = 128 + 100 * np.sin((x + 2 * i) / 9.0)
        g = 128 + 100 * np.cos((y - i) / 7.0)
        b = 255 * (x + y + i) / (w + h + n)
        out.append(Image.fromarray(np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8), "RGB"))
    return out


def mae(a, b):
    """Mean absolute pixel difference of two images."""
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).mean())

"""Benchmark: frame interpolation, Flow against Linear, on real photographs.

    python3 benchmarks/interpolation.py                          # about 25 s on 2 CPU cores
    python3 benchmarks/interpolation.py --size 128 --frames 4    # quick: about 2 s

Three photographs that scikit-image ships inside its wheel (astronaut,
chelsea, coffee: no download) are filmed by a virtual camera at twice the
frame rate, --size x --size pixels, sub-pixel exact (cv2.warpAffine, bicubic):

  pan   the view slides --pan pixels per kept frame to the right and a
        quarter of that down (pixels of a 512 image; scaled with --size);
  zoom  the view zooms in by --zoom per kept frame around the centre.

Every other frame is dropped (--frames are kept), the kept frames are
interpolated x2 by `interpolate(..., method=...)` exactly as the extension
does (one in-between per pair), and each in-between is compared with the
dropped frame it stands for: PSNR in dB (from the mean squared error over
all in-betweens of the row) and the mean absolute difference (0-255), and
the time per in-between frame (the whole interpolate() call divided by the
in-betweens, flow estimation included; median of --repeats) on the CPU.
Goal: Flow at least 6 dB above Linear for both motions.

Needs scikit-image (its bundled photographs) and opencv-python-headless.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT]

from motion_module.video.interpolation import frames_to_add, interpolate  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee")
MOTIONS = ("pan", "zoom")
METHODS = ("Linear", "Flow")
GOAL_DB = 6.0


def csv_of_photos(text):
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [n for n in names if n not in PHOTOS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names from {', '.join(PHOTOS)}, got {text!r}")
    return list(dict.fromkeys(names))


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512, help="frame side in pixels, 32-2048 (default 512)")
    ap.add_argument("--frames", type=int, default=16, help="kept frames, 4-64 (default 16)")
    ap.add_argument("--pan", type=float, default=16.0,
                    help="pan per kept frame in pixels of a 512 image, 0-64 (default 16)")
    ap.add_argument("--zoom", type=float, default=1.05, help="zoom factor per kept frame, 1-1.5 (default 1.05)")
    ap.add_argument("--photos", type=csv_of_photos, default=list(PHOTOS),
                    help=f"comma-separated, from {', '.join(PHOTOS)} (default all)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs of each interpolation, median (default 1)")
    return ap


def validate(args, ap):
    if not 32 <= args.size <= 2048:
        ap.error(f"argument --size: must be between 32 and 2048, got {args.size}")
    if not 4 <= args.frames <= 64:
        ap.error(f"argument --frames: must be between 4 and 64 (x2 adds one frame per pair from 4 frames on), "
                 f"got {args.frames}")
    if not 0 < args.pan <= 64:
        ap.error(f"argument --pan: must be above 0 and at most 64, got {args.pan:g}")
    if not 1 < args.zoom <= 1.5:
        ap.error(f"argument --zoom: must be above 1 and at most 1.5, got {args.zoom:g}")
    if args.repeats < 1:
        ap.error(f"argument --repeats: must be at least 1, got {args.repeats}")


def load_photo(name):
    try:
        import skimage.data
    except ImportError:
        sys.exit("benchmarks/interpolation.py needs scikit-image (pip install scikit-image)")
    photo = getattr(skimage.data, name)()
    return np.ascontiguousarray(photo[..., :3])


def view(photo, size, cx, cy, side):
    """The square of `side` source pixels centred at (cx, cy), as size x size."""
    import cv2

    s = side / size
    # Output pixel x shows source cx + s * (x - (size - 1) / 2): sub-pixel exact.
    m = np.float32([[s, 0, cx - s * (size - 1) / 2], [0, s, cy - s * (size - 1) / 2]])
    return cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def render(photo, motion, args):
    """All frames at twice the rate: (F - 1) * (k + 1) + 1 of them, k = in-betweens per pair."""
    import cv2

    # Never shrink through warpAffine (it would alias, and no method could
    # recover the dropped frames): prefilter the photo to the frame's scale.
    shrink = args.size / (min(photo.shape[:2]) - 2)
    if shrink < 1:
        photo = cv2.resize(photo, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    h, w = photo.shape[:2]
    k = frames_to_add(args.frames, 2)
    times = [j / (k + 1) for j in range((args.frames - 1) * (k + 1) + 1)]  # in kept frames
    last = args.frames - 1
    if motion == "pan":
        px = args.pan * args.size / 512  # per kept frame, output pixels
        tx, ty = px * last, px * last / 4  # whole travel, output pixels
        # The view plus its travel (in source pixels) fits inside the photo, 1 px spare for bicubic.
        side = min((w - 2) / (1 + tx / args.size), (h - 2) / (1 + ty / args.size))
        sx, sy = tx * side / args.size, ty * side / args.size
        return [view(photo, args.size, w / 2 + (tau / last - 0.5) * sx, h / 2 + (tau / last - 0.5) * sy, side)
                for tau in times]
    side = min(h, w) - 2
    return [view(photo, args.size, w / 2, h / 2, side / args.zoom ** tau) for tau in times]


def measure(frames, method, args):
    from PIL import Image

    k = frames_to_add(args.frames, 2)
    kept = [Image.fromarray(f) for f in frames[::k + 1]]
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = interpolate(kept, 2, method=method)
        seconds.append(time.perf_counter() - start)
    if len(out) != len(frames):
        raise AssertionError(f"{method} returned {len(out)} frames, expected {len(frames)}")
    between = [j for j in range(len(frames)) if j % (k + 1)]
    diff = np.stack([np.asarray(out[j], np.float64) - frames[j] for j in between])
    mse = float(np.mean(diff ** 2))
    return dict(psnr=10 * math.log10(255 ** 2 / mse) if mse else math.inf, mad=float(np.mean(np.abs(diff))),
                ms=1000 * statistics.median(seconds) / len(between), inbetweens=len(between))


def main():
    ap = build_parser()
    args = ap.parse_args()
    validate(args, ap)
    import cv2

    sys.stdout.reconfigure(line_buffering=True)
    print(f"{len(args.photos)} photographs, {args.size}x{args.size}, {args.frames} kept frames, pan "
          f"{args.pan:g} px/frame (at 512), zoom {args.zoom:g}x/frame, x2; CPU, OpenCV {cv2.__version__} with "
          f"{cv2.getNumThreads()} threads")
    rows = []
    for name in args.photos:
        photo = load_photo(name)
        for motion in MOTIONS:
            frames = render(photo, motion, args)
            for method in METHODS:
                rows.append(dict(photo=name, motion=motion, method=method, **measure(frames, method, args)))
    print()
    print("| photo | motion | method | PSNR dB | mean abs diff | ms / in-between |")
    print("|---|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['photo']} | {r['motion']} | {r['method']} | {r['psnr']:.2f} | {r['mad']:.2f} | {r['ms']:.2f} |")
    print()
    margins = {}
    for motion in MOTIONS:
        gains = [f["psnr"] - lin["psnr"] for lin in rows for f in rows
                 if lin["motion"] == f["motion"] == motion and lin["photo"] == f["photo"]
                 and (lin["method"], f["method"]) == ("Linear", "Flow")]
        margins[motion] = min(gains)
        print(f"{motion}: Flow - Linear PSNR, smallest over the photographs: {margins[motion]:+.2f} dB "
              f"({'meets' if margins[motion] >= GOAL_DB else 'misses'} the {GOAL_DB:g} dB goal)")
    print()
    print(json.dumps({"benchmark": "interpolation", "size": args.size, "frames": args.frames, "pan": args.pan,
                      "zoom": args.zoom, "threads": cv2.getNumThreads(), "rows": rows, "margin_db": margins}))


if __name__ == "__main__":
    main()

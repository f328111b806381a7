"""Benchmark: one sampling step of long videos through context windows.

    python3 benchmarks/long_video.py                 # 16, 48 and 96 frames at context 16
    python3 benchmarks/long_video.py --frames 16 32 64 --latent 8

For each frame count, in one run: the number of windows the step runs, the
time of the step (one UNet call with cond and uncond batched, as the
WebUI's "batch cond/uncond" sends it, through the injected module's window
runner), the time per window, and the peak memory of that step in a fresh
child process (the rise of its resident set, or CUDA's max allocated, over
the baseline after building). Time should grow with the number of windows
and nothing else; peak memory should not grow with the frames beyond the
latents themselves. Weights are random: speed and memory do not depend on them.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]

import motion_module as mm  # noqa: E402
from motion_module.context import context_windows  # noqa: E402
from motion_module.request.params import AnimateDiffParams, ParamError  # noqa: E402
from unet_step import add_device_options, build, peak_bytes  # noqa: E402


def options(args, frames):
    resolved = AnimateDiffParams(enable=True, video_length=frames, batch_size=args.context).resolve()
    return mm.ContextOptions(length=resolved.context_length, stride=resolved.stride, overlap=resolved.overlap,
                             closed_loop=resolved.closed_loop)


def step(unet, model, args, frames, device, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2 * frames, 4, args.latent, args.latent, generator=g).to(device, dtype)
    t = torch.full((2 * frames,), 500, device=device)
    c = torch.randn(2 * frames, 77, 768, generator=g).to(device, dtype)
    with torch.inference_mode(), mm.inject(unet, model, frames=frames, context=options(args, frames)):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        unet(x, t, context=c)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def child_main(args):
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    unet, model = build("v2", device, dtype)
    peak = peak_bytes(lambda: step(unet, model, args, args.frames[0], device, dtype), device)
    print(json.dumps({"peak_bytes": peak}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[16, 48, 96], help="frame counts (default 16 48 96)")
    ap.add_argument("--context", type=int, default=16, help="context batch size (default 16)")
    ap.add_argument("--latent", type=int, default=16, help="latent side, a multiple of 8 (default 16 = 128 px)")
    ap.add_argument("--repeats", type=int, default=1, help="timed steps per frame count, median (default 1)")
    add_device_options(ap)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    for frames in args.frames:
        if frames < 1:
            ap.error(f"argument --frames: each must be at least 1, got {frames}")
        try:
            AnimateDiffParams(enable=True, video_length=frames, batch_size=args.context).resolve()
        except ParamError as e:
            ap.error(str(e).removeprefix("AnimateDiff: "))
    if args.latent < 8 or args.latent % 8 or args.repeats < 1:
        ap.error("--latent must be a positive multiple of 8 and --repeats at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("argument --device: cuda was asked for, but torch sees no CUDA device")
    sys.stdout.reconfigure(line_buffering=True)
    if args.child:
        return child_main(args)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    print(f"full-width SD1.5 UNet + random v2 module on {device} ({args.dtype}), context {args.context}, "
          f"latent {args.latent}x{args.latent}, cond+uncond batched")
    unet, model = build("v2", device, dtype)
    step(unet, model, args, args.context, device, dtype)  # warm-up
    rows = []
    for frames in args.frames:
        windows = len(context_windows(frames, 0, options(args, frames)))
        seconds = statistics.median(step(unet, model, args, frames, device, dtype) for _ in range(args.repeats))
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--frames", str(frames)]
        for key in ("context", "latent", "device", "dtype"):
            cmd += [f"--{key}", str(getattr(args, key))]
        peak = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        rows.append((frames, windows, seconds, peak["peak_bytes"]))
        print(f"{frames:4d} frames: {windows:2d} windows, step {seconds:7.2f} s, {seconds / windows:6.2f} s/window, "
              f"peak {peak['peak_bytes'] / 2 ** 20:7.0f} MiB")
    base = rows[0]
    print("ratios to the first row: " + ", ".join(
        f"{f} frames: windows x{w / base[1]:.2f}, time x{s / base[2]:.2f}, peak x{m / base[3]:.2f}"
        for f, w, s, m in rows[1:]))


if __name__ == "__main__":
    main()

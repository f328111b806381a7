"""Benchmark: several videos in one WebUI batch (videos_per_batch) against one video per batch.

    python3 benchmarks/videos_per_batch.py                          # 2 videos x 16 frames, latent 32
    python3 benchmarks/videos_per_batch.py --frames 8 --latent 16 --repeats 3
    python3 benchmarks/videos_per_batch.py --frames 24 --context 16  # context windows
    python3 benchmarks/videos_per_batch.py --device cuda --dtype float16 --latent 64 --videos 4

One UNet evaluation of a sampling step, as the WebUI makes it with "batch
cond/uncond" on (cond rows of every video, then uncond rows, video-major), on
a full-width SD1.5 ldm UNet (SDXL's for sdxl/hotshot) with a random motion
module injected: --videos videos in one call against --videos calls of one
video each, side by side in one process. Prints the median time of each
(interleaved repeats, so machine noise hits both alike), their ratio, the
peak memory each adds over what the weights hold (on CPU: the rise of the
resident set over its baseline, from the kernel's high-water mark reset
before each; on CUDA: torch.cuda.max_memory_allocated), and the largest
difference between the batched videos and the single ones (float rounding
of differently sized matmuls; 0 when the kernels do not depend on the batch).

Weights are random; speed and memory do not depend on their values. Needs
`ldm` (pip install --no-deps stable-diffusion-sdkit) and einops.
"""

import argparse
import os
import statistics
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import motion_module as mm  # noqa: E402
from unet_step import _HelpFormatter, add_unet_options, build, peak_bytes, timed  # noqa: E402


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    add_unet_options(ap, "frames of each video", "videos per batch")
    ap.add_argument("--context", type=int, default=0, help="context batch size (0 = the frames: one window)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    return ap


def validate(args, ap):
    """The extension's own rules (videos per batch, frames per pass), plain
    bounds for the rest; errors exit 2 naming the option."""
    from motion_module.request.params import AnimateDiffParams, ParamError, check_context_fits

    kind = mm.get_kind(args.kind)
    for name in ("frames", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"argument --{name}: must be at least 1, got {getattr(args, name)}")
    if args.context < 0:
        ap.error(f"argument --context: must be at least 0, got {args.context}")
    option = {"videos_per_batch": "videos", "batch_size": "context", "video_length": "frames"}
    try:
        resolved = AnimateDiffParams(enable=True, video_length=args.frames, batch_size=args.context or args.frames,
                                     videos_per_batch=args.videos).resolve()
        check_context_fits(resolved, kind.default_max_frames, f"the {kind.name} motion module")
    except ParamError as e:
        ap.error(f"argument --{option.get(e.field, e.field)}: {str(e).removeprefix('AnimateDiff: ')}")
    multiple = 1 << (len(kind.channels) - 1)
    if args.latent < multiple or args.latent % multiple:
        ap.error(f"argument --latent: the {'SDXL' if kind.is_sdxl else 'SD1.5'} UNet needs a positive multiple "
                 f"of {multiple}, got {args.latent}")
    if args.threads < 0:
        ap.error(f"argument --threads: must be at least 0, got {args.threads}")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("argument --device: cuda was asked for, but torch sees no CUDA device")
    return resolved


def make_inputs(args, device, dtype, context_dim):
    """Each video's noise and conditioning, [frames, ...] per video."""
    g = torch.Generator().manual_seed(0)
    videos = []
    for _ in range(args.videos):
        x = torch.randn(args.frames, 4, args.latent, args.latent, generator=g).to(device, dtype)
        cond, uncond = (torch.randn(1, 77, context_dim, generator=g).expand(args.frames, -1, -1).to(device, dtype)
                        for _ in range(2))
        videos.append((x, cond, uncond))
    return videos


def evaluate(unet, model, videos, frames, context):
    """One guided UNet evaluation of these videos together: [cond rows of
    every video, uncond rows of every video] in one call."""
    x = torch.cat([v[0] for v in videos] * 2)
    c = torch.cat([v[1] for v in videos] + [v[2] for v in videos])
    t = torch.full((x.shape[0],), 500, device=x.device)
    with torch.inference_mode(), mm.inject(unet, model, frames=frames, context=context):
        out = unet(x, t, context=c)
    rows = len(videos) * frames
    return out[:rows] - out[rows:]  # the guidance direction of each row


def main():
    ap = build_parser()
    args = ap.parse_args()
    resolved = validate(args, ap)
    sys.stdout.reconfigure(line_buffering=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    kind = mm.get_kind(args.kind)
    context = None
    if resolved.video_length > resolved.context_length:
        context = mm.ContextOptions(length=resolved.context_length, stride=resolved.stride, overlap=resolved.overlap,
                                    closed_loop=resolved.closed_loop)
    print(f"building full-width {'SDXL' if kind.is_sdxl else 'SD1.5'} UNet + random {args.kind} motion module on "
          f"{device} ({args.dtype}, {torch.get_num_threads()} threads)")
    unet, model = build(args.kind, device, dtype, args.spatial_attention)
    videos = make_inputs(args, device, dtype, 2048 if kind.is_sdxl else 768)
    windows = f", context {resolved.context_length} (windows)" if context else ""
    print(f"{args.videos} videos x {args.frames} frames{windows}, latent {args.latent}x{args.latent} "
          f"({args.latent * 8} px), cond+uncond batched: one call of {2 * resolved.webui_batch_size} rows "
          f"against {args.videos} calls of {2 * args.frames} rows")

    def batched():
        return evaluate(unet, model, videos, args.frames, context)

    def singles():
        return torch.cat([evaluate(unet, model, [v], args.frames, context) for v in videos])

    together, apart = batched(), singles()  # warm-up, and the outputs to compare
    diff = float((together - apart).abs().max())
    scale = float(apart.abs().max())
    batched_t, singles_t = [], []
    for i in range(args.repeats):  # interleaved
        batched_t.append(timed(batched, device))
        singles_t.append(timed(singles, device))
        print(f"repeat {i + 1}/{args.repeats}: one batch {batched_t[-1]:.3f} s, {args.videos} single runs "
              f"{singles_t[-1]:.3f} s")
    batched_s, singles_s = statistics.median(batched_t), statistics.median(singles_t)
    batched_peak, singles_peak = peak_bytes(batched, device), peak_bytes(singles, device)
    print(f"{args.videos} videos in one batch:   {batched_s:8.3f} s  peak +{batched_peak / 2**20:7.0f} MiB")
    print(f"{args.videos} single-video batches:  {singles_s:8.3f} s  peak +{singles_peak / 2**20:7.0f} MiB")
    print(f"time ratio (batch / singles):  {batched_s / singles_s:6.3f}")
    print(f"memory ratio (batch / single): {batched_peak / max(singles_peak, 1):6.3f}")
    print(f"max |batched - single|:        {diff:.3g} (max |value| {scale:.3g})")


if __name__ == "__main__":
    main()

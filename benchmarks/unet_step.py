"""Benchmark: one UNet step with and without a motion module injected.

    python3 benchmarks/unet_step.py                  # full SD1.5 widths, v2 module
    python3 benchmarks/unet_step.py --kind v1 --frames 16 --latent 32 --repeats 3

Prints, for the same input in one run: the time of a plain UNet step, the time
of an injected step, their ratio, the ratio predicted from FLOP counts
(torch's FlopCounterMode over both forwards), and the peak memory of each
(on CPU: the rise of a child process's resident set over its baseline
during that one forward, from the kernel's high-water mark; on CUDA:
torch.cuda.max_memory_allocated). Times are the median of interleaved
repeats, so machine noise hits both sides alike; the ratio is what to read.

Weights are random (real weights cannot be downloaded here); speed does not
depend on their values. Needs the `ldm` package (pip install --no-deps
stable-diffusion-sdkit) and einops.
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
sys.path.insert(0, ROOT)

import motion_module as mm  # noqa: E402
from motion_module.synthetic import random_model  # noqa: E402

SD15 = dict(image_size=64, in_channels=4, out_channels=4, model_channels=320, attention_resolutions=[4, 2, 1],
            num_res_blocks=2, channel_mult=[1, 2, 4, 4], num_heads=8, use_spatial_transformer=True,
            transformer_depth=1, context_dim=768, legacy=False)
SDXL = dict(image_size=128, in_channels=4, out_channels=4, model_channels=320, attention_resolutions=[4, 2],
            num_res_blocks=2, channel_mult=[1, 2, 4], num_head_channels=64, use_spatial_transformer=True,
            transformer_depth=1, context_dim=2048, use_linear_in_transformer=True, legacy=False)


def build(kind, device, dtype, spatial_attention="sdpa"):
    from ldm.modules.diffusionmodules.openaimodel import UNetModel

    info = mm.get_kind(kind)
    torch.manual_seed(0)
    with torch.device("meta"):
        unet = UNetModel(**(SDXL if info.is_sdxl else SD15))
    unet.to_empty(device=device)
    with torch.no_grad():
        for p in unet.parameters():
            p.normal_(0, 0.02)
    unet = unet.to(dtype).eval().requires_grad_(False)
    if spatial_attention == "sdpa":
        use_sdpa_spatial_attention(unet)
    model = random_model(kind).to(device=device, dtype=dtype)
    return unet, model


def use_sdpa_spatial_attention(unet):
    """Run ldm's spatial attention through torch SDPA, as the WebUI's default
    cross-attention optimisation does on torch 2; ldm's own einsum attention
    is several times slower on CPU and would flatter the injected ratio."""
    import torch.nn.functional as F
    from ldm.modules.attention import CrossAttention

    def make_forward(attn):
        def forward(x, context=None, mask=None):
            context = x if context is None else context
            q, k, v = attn.to_q(x), attn.to_k(context), attn.to_v(context)
            b, n, inner = q.shape
            q, k, v = (t.view(b, -1, attn.heads, inner // attn.heads).transpose(1, 2) for t in (q, k, v))
            out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, inner)
            return attn.to_out(out)
        return forward

    for module in unet.modules():
        if isinstance(module, CrossAttention):
            module.forward = make_forward(module)


def make_inputs(args, device, dtype, context_dim):
    g = torch.Generator().manual_seed(0)
    n = args.videos * args.frames
    x = torch.randn(n, 4, args.latent, args.latent, generator=g).to(device, dtype)
    t = torch.full((n,), 500, device=device)
    c = torch.randn(n, 77, context_dim, generator=g).to(device, dtype)
    return x, t, c


def run_once(unet, model, inputs, frames, injected):
    x, t, c = inputs
    with torch.inference_mode():
        if injected:
            with mm.inject(unet, model, frames=frames):
                return unet(x, t, context=c)
        return unet(x, t, context=c)


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def flops(unet, model, inputs, frames, injected):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        run_once(unet, model, inputs, frames, injected)
    return counter.get_total_flops()


def child_peak(args, injected):
    """Peak memory of a fresh process that builds the UNet and runs one forward."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "injected" if injected else "plain"]
    for key in ("kind", "frames", "videos", "latent", "device", "dtype", "spatial_attention"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def child_main(args):
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    unet, model = build(args.kind, device, dtype, args.spatial_attention)
    inputs = make_inputs(args, device, dtype, 2048 if mm.get_kind(args.kind).is_sdxl else 768)
    peak = peak_bytes(lambda: run_once(unet, model, inputs, args.frames, args.child == "injected"), device)
    print(json.dumps({"peak_bytes": peak}))


def peak_bytes(fn, device):
    """Memory that fn() adds at its peak over what was held before it (bytes)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _reset_peak_rss()
    fn()
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() - base
    return _proc_status_kib("VmHWM") * 1024 - base


def _proc_status_kib(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def _reset_peak_rss():
    """Forget the building phase's peak: free what can be freed, then reset the
    kernel's high-water mark (Linux >= 4.0), so VmHWM afterwards is the
    forward's own peak on top of the returned baseline (bytes)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _proc_status_kib("VmRSS") * 1024


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def add_device_options(ap):
    """--device and --dtype, as every benchmark takes them."""
    shown = issubclass(ap.formatter_class, argparse.ArgumentDefaultsHelpFormatter)  # it prints defaults itself
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"],
                    help="where to run" + ("" if shown else " (default: cuda when available)"))
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                    help="weights and inputs" + ("" if shown else " (default float32)"))


def add_unet_options(ap, frames_help, videos_help):
    """The UNet step under test: motion-module kind, frames, videos (rows of cond and uncond), latent size,
    repeats, device and dtype, and the UNet's spatial attention."""
    ap.add_argument("--kind", default="v2", choices=sorted(mm.KINDS), help="motion-module kind")
    ap.add_argument("--frames", type=int, default=16, help=frames_help)
    ap.add_argument("--videos", type=int, default=2, help=videos_help)
    ap.add_argument("--latent", type=int, default=32, help="latent side (image side / 8)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats of each side")
    add_device_options(ap)
    ap.add_argument("--spatial-attention", default="sdpa", choices=["sdpa", "ldm"],
                    help="sdpa: the UNet's own attention through torch SDPA, like the WebUI's default "
                         "optimisation; ldm: ldm's einsum attention")


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    add_unet_options(ap, "frames of each video, all in one pass", "2 = cond + uncond of one video")
    ap.add_argument("--no-memory", action="store_true", help="skip the child-process memory measurement")
    ap.add_argument("--child", choices=["plain", "injected"], help=argparse.SUPPRESS)
    return ap


def validate(args, ap):
    """The extension's own rules where it has them (frames per pass, as the
    context batch size), plain bounds for the rest; errors exit 2 naming the option."""
    from motion_module.request.params import AnimateDiffParams, ParamError, check_context_fits

    kind = mm.get_kind(args.kind)
    try:
        resolved = AnimateDiffParams(enable=True, video_length=args.frames, batch_size=args.frames).resolve()
        check_context_fits(resolved, kind.default_max_frames, f"the {kind.name} motion module")
    except ParamError as e:
        ap.error(f"argument --frames: {str(e).removeprefix('AnimateDiff: ')}")
    if args.frames < 1:
        ap.error(f"argument --frames: must be at least 1, got {args.frames}")
    multiple = 1 << (len(kind.channels) - 1)  # one halving per UNet level after the first
    if args.latent < multiple or args.latent % multiple:
        ap.error(f"argument --latent: the {'SDXL' if kind.is_sdxl else 'SD1.5'} UNet needs a positive multiple "
                 f"of {multiple}, got {args.latent}")
    for name in ("videos", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"argument --{name}: must be at least 1, got {getattr(args, name)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("argument --device: cuda was asked for, but torch sees no CUDA device")


def main():
    ap = build_parser()
    args = ap.parse_args()
    validate(args, ap)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows up when piped to a file
    if args.child:
        return child_main(args)

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    print(f"building full-width {'SDXL' if mm.get_kind(args.kind).is_sdxl else 'SD1.5'} UNet + random "
          f"{args.kind} motion module on {device} ({args.dtype}, spatial attention: {args.spatial_attention})",
          flush=True)
    unet, model = build(args.kind, device, dtype, args.spatial_attention)
    inputs = make_inputs(args, device, dtype, 2048 if mm.get_kind(args.kind).is_sdxl else 768)
    print(f"input: {args.videos} video(s) x {args.frames} frames, latent {args.latent}x{args.latent} "
          f"({args.latent * 8}x{args.latent * 8} px)", flush=True)

    print("counting FLOPs of both forwards...")
    plain_flops = flops(unet, model, inputs, args.frames, False)
    injected_flops = flops(unet, model, inputs, args.frames, True)

    print("warm-up of both paths...")
    run_once(unet, model, inputs, args.frames, False)
    run_once(unet, model, inputs, args.frames, True)
    plain_t, injected_t = [], []
    for i in range(args.repeats):  # interleaved: noise hits both sides alike
        plain_t.append(timed(lambda: run_once(unet, model, inputs, args.frames, False), device))
        injected_t.append(timed(lambda: run_once(unet, model, inputs, args.frames, True), device))
        print(f"repeat {i + 1}/{args.repeats}: plain {plain_t[-1]:.3f} s, injected {injected_t[-1]:.3f} s")
    plain_s, injected_s = statistics.median(plain_t), statistics.median(injected_t)

    print(f"plain UNet step:     {plain_s:8.3f} s   {plain_flops / 1e12:7.3f} TFLOP")
    print(f"injected UNet step:  {injected_s:8.3f} s   {injected_flops / 1e12:7.3f} TFLOP")
    print(f"measured ratio:      {injected_s / plain_s:8.3f}")
    print(f"predicted by FLOPs:  {injected_flops / plain_flops:8.3f}")
    if not args.no_memory:
        print("measuring peak memory in fresh child processes...")
        plain_peak = child_peak(args, False)["peak_bytes"]
        injected_peak = child_peak(args, True)["peak_bytes"]
        print(f"peak memory plain:   {plain_peak / 2**20:8.0f} MiB (forward only)")
        print(f"peak memory injected:{injected_peak / 2**20:8.0f} MiB (forward only)")
        print(f"memory ratio:        {injected_peak / max(plain_peak, 1):8.3f}")


if __name__ == "__main__":
    main()

"""Benchmark: step caching (DeepCache per frame) against exact sampling.

    python3 benchmarks/step_cache.py --cases one --steps 12 --intervals 3     # a few minutes on 2 CPU cores
    python3 benchmarks/step_cache.py --sweep                # depth x early at 16 frames, 12 steps, interval 3
    python3 benchmarks/step_cache.py                        # the whole matrix (long on a CPU, see below)
    python3 benchmarks/step_cache.py --device cuda --dtype float16 --latent 64

A full-width SD1.5 ldm UNet and a v2 motion module, both with random weights,
sampled with a k-diffusion sampler through its DiscreteEpsDDPMDenoiser over
SD1.5's schedule (scaled_linear betas 0.00085-0.012, 1000 steps), with
classifier-free guidance batched (cond and uncond rows in one UNet call).
The case "one" is --frames frames in one pass; "windows" is twice as many
frames through moving context windows of --frames (stride 1, overlap a
quarter, closed loop R-P, pyramid fusion).

For each case, steps and cache setting (interval, depth, early): the time of
exact sampling and of cached sampling (interleaved, median of --repeats), the
speed-up (exact/cached), the mean absolute difference of the cached final
latents from the exact ones, and the same difference for the equal-time
baseline: exact sampling with round(steps * cached time / exact time) steps,
against the exact run at full steps. Caching is only worth it where its
difference is below the baseline's. Also the inner UNet calls that ran full
or cached (one per context window), the stored features per frame (both rows,
in the run's dtype) and an estimate of that size at 512x512 (and 1024x1024
for SDXL) in fp16 from the shapes of the reused block outputs.

--sweep is a preset for choosing defaults (16 frames, 12 steps, interval 3,
depths 0-3, early 0/0.2/0.3) and adds the yardstick: the difference between
two exact runs whose seeds (initial noise) are neighbours.

Random weights: the latent differences show that caching works and how
settings compare, not how a trained model's videos would look; speed does
not depend on the weights. Cost on 2 CPU cores at latent 16: one 16-frame
UNet call takes about 12 s, so `--cases one --steps 12 --intervals 3` takes
about 5 minutes, --sweep about 30, and the default matrix about an hour and a
half (16 frames: 7 min at 12 steps, 14 at 25; the 32-frame case three times
that); the rows of each case and step count are printed as they finish.
Needs `ldm` (pip install --no-deps stable-diffusion-sdkit), einops and
k-diffusion (0.1.1.post1; its sampling modules are loaded as the demo does
when the whole package cannot be imported).
"""

import argparse
import contextlib
import json
import math
import os
import statistics
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE, os.path.join(ROOT, "demo")]

import motion_module as mm  # noqa: E402
from motion_module.context import context_windows  # noqa: E402
from motion_module.schedules import Schedule  # noqa: E402
from motion_module.stepcache import CacheOptions, StepCache, deep_blocks, max_depth  # noqa: E402
from unet_step import SD15, SDXL, add_device_options, build, timed  # noqa: E402
from animatediff_demo import K_SAMPLING, build_denoiser  # noqa: E402

SD15_SCHEDULE = Schedule("sd15", "scaled_linear", 0.00085, 0.012)
SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral",
            "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde")
CASES = ("one", "windows")
SWEEP = dict(cases=["one"], steps=[12], intervals=[3], depth=[0, 1, 2, 3], early=[0.0, 0.2, 0.3])
DEFAULTS = dict(cases=list(CASES), steps=[12, 25], intervals=[2, 3, 5], depth=[CacheOptions().depth],
                early=[CacheOptions().early])
TOKENS, TEXT_DIM = 77, 768
MIB = 2 ** 20


def csv_of(kind, name):
    """argparse type: a comma-separated list of `kind`."""
    def parse(text):
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {name}, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected at least one {name}")
        return values
    return parse


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=csv_of(str, "cases"), help="one, windows (default: both)")
    ap.add_argument("--frames", type=int, default=16,
                    help="frames of the case 'one', context length of 'windows' (2x frames) (default 16)")
    ap.add_argument("--steps", type=csv_of(int, "integers"), help="sampling steps (default 12,25)")
    ap.add_argument("--intervals", type=csv_of(int, "integers"), help="a full step every N steps (default 2,3,5)")
    ap.add_argument("--depth", type=csv_of(int, "integers"),
                    help=f"shallow blocks that always run (default {CacheOptions().depth}; --sweep: 0,1,2,3)")
    ap.add_argument("--early", type=csv_of(float, "numbers"),
                    help=f"share of first steps always full (default {CacheOptions().early:g}; --sweep: 0,0.2,0.3)")
    ap.add_argument("--latent", type=int, default=16, help="latent side, a multiple of 8 (default 16 = 128 px)")
    ap.add_argument("--sampler", default="euler", choices=SAMPLERS, help="k_diffusion.sampling.sample_<name> "
                    "(default euler: deterministic, so the differences are the cache's alone)")
    ap.add_argument("--schedule", default="default", choices=["default", "karras"],
                    help="sigmas: the denoiser's own (default) or get_sigmas_karras")
    ap.add_argument("--cfg", type=float, default=7.5, help="classifier-free guidance scale (default 7.5)")
    ap.add_argument("--seed", type=int, default=0, help="initial noise, text contexts, sampler noise (default 0)")
    ap.add_argument("--repeats", type=int, default=1, help="timed repeats of each sampling, median (default 1)")
    ap.add_argument("--yardstick", action="store_true",
                    help="also sample the seed+1 noise exactly: the change of a neighbouring seed (on in --sweep)")
    ap.add_argument("--sweep", action="store_true",
                    help="preset to choose defaults: cases one, steps 12, interval 3, depths 0-3, early 0/0.2/0.3")
    add_device_options(ap)
    return ap


def validate(args, ap):
    preset = SWEEP if args.sweep else DEFAULTS
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, list(value))
    for key in preset:  # a value given twice runs once
        setattr(args, key, list(dict.fromkeys(getattr(args, key))))
    args.yardstick = args.yardstick or args.sweep
    for case in args.cases:
        if case not in CASES:
            ap.error(f"argument --cases: unknown case {case!r} (choose from {', '.join(CASES)})")
    limit = mm.get_kind("v2").default_max_frames
    if not 1 <= args.frames <= limit:
        ap.error(f"argument --frames: must be between 1 and {limit} (the v2 module's frames per pass), "
                 f"got {args.frames}")
    if args.latent < 8 or args.latent % 8:
        ap.error(f"argument --latent: the SD1.5 UNet needs a positive multiple of 8, got {args.latent}")
    for name in ("steps", "intervals"):
        if min(getattr(args, name)) < 1:
            ap.error(f"argument --{name}: each must be at least 1, got {min(getattr(args, name))}")
    deepest = sd15_max_depth()
    if not all(0 <= d <= deepest for d in args.depth):
        ap.error(f"argument --depth: each must be between 0 and {deepest} for the SD1.5 UNet, got {args.depth}")
    if not all(0 <= e <= 1 for e in args.early):
        ap.error(f"argument --early: each must be between 0 and 1, got {args.early}")
    if args.repeats < 1:
        ap.error(f"argument --repeats: must be at least 1, got {args.repeats}")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("argument --device: cuda was asked for, but torch sees no CUDA device")
    if args.device == "cpu" and args.dtype != "float32":
        # Low precision runs under autocast, as in the WebUI; CPU autocast leaves
        # ldm's float32 GroupNorm input with low-precision weights (mixed dtype).
        ap.error(f"argument --dtype: {args.dtype} needs --device cuda (autocast); on cpu use float32")


def meta_unet(config):
    from ldm.modules.diffusionmodules.openaimodel import UNetModel

    with torch.device("meta"):
        return UNetModel(**config)


def sd15_max_depth():
    return max_depth(meta_unet(SD15))


def feature_estimate(depths=(0, 1, 2)):
    """MiB per frame of the reused features in fp16, cond + uncond rows, from
    the boundary block's output shape in one forward on the meta device."""
    out = []
    for name, config, latent in (("SD1.5", SD15, 64), ("SDXL", SDXL, 64), ("SDXL", SDXL, 128)):
        unet, shapes = meta_unet(config), {}
        for depth in depths:
            _, boundary = deep_blocks(unet, depth)
            boundary.register_forward_hook(lambda m, i, o, d=depth: shapes.__setitem__(d, tuple(o.shape[1:])))
        with torch.device("meta"):
            text = torch.zeros(1, TOKENS, config["context_dim"])
            unet(torch.zeros(1, 4, latent, latent), torch.zeros(1), context=text)
        out.append({"model": name, "pixels": latent * 8,  # 2 bytes (fp16) x 2 rows (cond, uncond)
                    "mib_per_frame": {d: 2 * 2 * math.prod(shapes[d]) / MIB for d in depths},
                    "shape": {d: list(shapes[d]) for d in depths}})
    return out


class Bench:
    """One UNet and motion module; samples any case exactly or with a cache."""

    def __init__(self, args):
        self.args = args
        self.device, self.dtype = torch.device(args.device), getattr(torch, args.dtype)
        self.unet, self.model = build("v2", self.device, self.dtype)
        self.alphas_cumprod = SD15_SCHEDULE.alphas_cumprod().to(self.device)
        self.sampler = getattr(K_SAMPLING, f"sample_{args.sampler}")

    def case(self, name):
        frames = self.args.frames if name == "one" else 2 * self.args.frames
        context = None if name == "one" else mm.ContextOptions(
            length=self.args.frames, stride=1, overlap=self.args.frames // 4, closed_loop="R-P", fuse="pyramid")
        g = torch.Generator().manual_seed(self.args.seed)
        cond, uncond = torch.randn(2, 1, TOKENS, TEXT_DIM, generator=g).unbind(0)  # different prompts
        cond, uncond = (c.expand(frames, -1, -1).to(self.device) for c in (cond, uncond))
        denoiser = build_denoiser(self.unet, self.alphas_cumprod, cond, uncond, self.args.cfg)
        windows = 1 if context is None else len(context_windows(frames, 0, context))
        return dict(name=name, frames=frames, context=context, denoiser=denoiser, windows=windows)

    def sigmas(self, denoiser, steps):
        if self.args.schedule == "karras":
            return K_SAMPLING.get_sigmas_karras(steps, denoiser.sigma_min.item(), denoiser.sigma_max.item(),
                                                device=self.device)
        return denoiser.get_sigmas(steps).to(self.device)

    def sample(self, case, steps, options=None, seed=None):
        """(final latents, seconds, cache report or None) of one sampling."""
        seed = self.args.seed if seed is None else seed
        denoiser = case["denoiser"]
        sigmas = self.sigmas(denoiser, steps)
        noise = torch.randn(case["frames"], 4, self.args.latent, self.args.latent,
                            generator=torch.Generator().manual_seed(seed)).to(self.device)
        cache = StepCache(self.unet, options) if options is not None else None
        result = {}

        def run():
            torch.manual_seed(seed)  # the ancestral and SDE samplers' noise
            autocast = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype != torch.float32
                        else contextlib.nullcontext())
            with torch.inference_mode(), autocast, mm.inject(self.unet, self.model, frames=case["frames"],
                                                             context=case["context"], step_cache=cache):
                result["x"] = self.sampler(denoiser, noise * sigmas[0], sigmas, disable=True)

        report = None
        if cache is None:
            seconds = timed(run, self.device)
        else:
            cache.attach()
            try:
                # Timesteps of the schedule points the sampler steps from (the
                # final sigma 0 is no step of its own; see the report on new_sampling).
                cache.new_sampling(denoiser.sigma_to_t(sigmas[:-1]).tolist(), len(sigmas) - 1)
                seconds = timed(run, self.device)
                report = dict(cache.counts(), feature_bytes=cache.feature_bytes)
            finally:
                cache.detach()
        return result["x"].float(), seconds, report


def mean_abs(a, b):
    return (a - b).abs().mean().item()


def run_case(bench, case, steps, settings, args, log):
    """Rows for one case and step count, over every cache setting."""
    exact_t, cached_t, reports = [], {s: [] for s in settings}, {}
    for r in range(args.repeats):  # interleaved: machine noise hits every side alike
        exact, seconds, _ = bench.sample(case, steps)
        exact_t.append(seconds)
        log(f"  exact {steps} steps: {seconds:7.1f} s" + (f" (repeat {r + 1})" if args.repeats > 1 else ""))
        latents = {}
        for s in settings:
            latents[s], seconds, report = bench.sample(case, steps, s)
            cached_t[s].append(seconds)
            reports[s] = report
            log(f"  cached interval {s.interval} depth {s.depth} early {s.early:g}: {seconds:7.1f} s, "
                f"calls {report['full']} full / {report['cached']} cached")
    exact_s = statistics.median(exact_t)
    baselines = {steps: exact}  # equal-time baselines by step count, each sampled once
    rows = []
    for s in settings:
        cached_s = statistics.median(cached_t[s])
        equal = max(1, min(steps, round(steps * cached_s / exact_s)))
        if equal not in baselines:
            baselines[equal], seconds, _ = bench.sample(case, equal)
            log(f"  exact {equal} steps (equal-time baseline): {seconds:7.1f} s")
        rows.append(dict(case=case["name"], frames=case["frames"], windows=case["windows"], steps=steps,
                         interval=s.interval, depth=s.depth, early=s.early, full=reports[s]["full"],
                         cached=reports[s]["cached"],
                         mib_per_frame=reports[s]["feature_bytes"] / case["frames"] / MIB,
                         exact_s=exact_s, cached_s=cached_s, speedup=exact_s / cached_s,
                         diff=mean_abs(latents[s], exact), equal_steps=equal,
                         equal_diff=mean_abs(baselines[equal], exact)))
    scale = exact.abs().mean().item()
    yardstick = None
    if args.yardstick:
        other, seconds, _ = bench.sample(case, steps, seed=args.seed + 1)
        yardstick = mean_abs(other, exact)
        log(f"  exact {steps} steps, seed {args.seed + 1}: {seconds:7.1f} s; change of a neighbouring seed "
            f"{yardstick:.4f}")
    return rows, dict(case=case["name"], steps=steps, exact_abs_mean=scale, neighbour_seed_diff=yardstick)


def main():
    ap = build_parser()
    args = ap.parse_args()
    validate(args, ap)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows up when piped to a file
    log = print
    settings = list(dict.fromkeys(CacheOptions(interval=i, depth=d, early=e) for i in args.intervals
                                  for d in args.depth for e in args.early))
    log(f"full-width SD1.5 UNet + random v2 module on {args.device} ({args.dtype}, {torch.get_num_threads()} "
        f"threads), latent {args.latent}x{args.latent} ({args.latent * 8} px), sampler {args.sampler}, "
        f"{args.schedule} schedule, cfg {args.cfg:g} (cond + uncond batched), seed {args.seed}")
    estimate = feature_estimate()
    bench = Bench(args)
    warm = bench.case("one")
    log("warm-up: one exact step of the case 'one'")
    bench.sample(warm, 1)

    rows, scales = [], []
    for name in args.cases:
        case = bench.case(name)
        for steps in args.steps:
            log(f"case {name}: {case['frames']} frames, {case['windows']} window(s) per step, {steps} steps")
            case_rows, scale = run_case(bench, case, steps, settings, args, log)
            rows.extend(case_rows)
            scales.append(scale)
            for line in table_rows(case_rows):  # kept if a later case does not finish
                log("  " + line)

    print_tables(rows, scales, estimate, args)
    print(json.dumps({"benchmark": "step_cache", "device": args.device, "dtype": args.dtype,
                      "threads": torch.get_num_threads(), "latent": args.latent, "sampler": args.sampler,
                      "schedule": args.schedule, "cfg": args.cfg, "seed": args.seed, "repeats": args.repeats,
                      "equal_time_steps": "round(steps * cached_s / exact_s)", "rows": rows, "exact": scales,
                      "feature_estimate_fp16": estimate}))


def table_rows(rows):
    for r in rows:
        case = "one window" if r["case"] == "one" else f"{r['windows']} windows"
        yield (f"| {case} | {r['frames']} | {r['steps']} | {r['interval']} | {r['depth']} | {r['early']:g} "
               f"| {r['full']}/{r['cached']} | {r['exact_s']:.1f} | {r['cached_s']:.1f} | {r['speedup']:.2f} "
               f"| {r['diff']:.4f} | {r['equal_steps']} | {r['equal_diff']:.4f} | {r['mib_per_frame']:.2f} |")


def print_tables(rows, scales, estimate, args):
    print()
    print(f"Step cache, {args.sampler} ({args.schedule} schedule), latent {args.latent} ({args.latent * 8} px), "
          f"{args.device} {args.dtype}, {torch.get_num_threads()} threads; diff = mean |latents - exact latents "
          f"at full steps|; equal-time steps = round(steps x cached s / exact s)")
    print()
    print("| case | frames | steps | interval | depth | early | calls full/cached | exact s | cached s | speed-up "
          "| diff cached | equal-time steps | diff equal-time | features MiB/frame |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in table_rows(rows):
        print(line)
    print()
    for s in scales:
        line = f"exact latents of {s['case']}, {s['steps']} steps: mean |x| {s['exact_abs_mean']:.4f}"
        if s["neighbour_seed_diff"] is not None:
            line += f"; change of a neighbouring seed (seed vs seed+1, exact): {s['neighbour_seed_diff']:.4f}"
        print(line)
    print()
    print("Stored features per frame, fp16, cond + uncond (estimate from the reused block's output shape):")
    print()
    print("| model | image | depth 0 | depth 1 | depth 2 |")
    print("|---|---|---:|---:|---:|")
    for e in estimate:
        cells = " | ".join(f"{e['mib_per_frame'][d]:.1f} MiB ({e['shape'][d][0]} ch)" for d in (0, 1, 2))
        print(f"| {e['model']} | {e['pixels']}x{e['pixels']} | {cells} |")
    print()


if __name__ == "__main__":
    main()

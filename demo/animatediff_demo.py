#!/usr/bin/env python3
"""AnimateDiff engine demo: the whole pipeline on a CPU, without the WebUI.

    python3 demo/animatediff_demo.py --kind v2 --frames 24 --context 16 --steps 4 --out outputs/demo

What runs, in order:

1. a small ldm ``UNetModel`` (the class the WebUI uses for SD1.x; SDXL's
   block layout for the ``sdxl`` and ``hotshot`` kinds) with reduced widths;
2. a motion module of the chosen kind (``motion_module.synthetic.random_model``)
   injected into it with ``motion_module.inject``, with context windows
   (``motion_module.ContextOptions``) when ``--frames`` exceeds ``--context``;
3. k-diffusion's Euler sampler and DDPM denoiser wrapper over the kind's
   training schedule (``motion_module.schedules.schedule_for(kind).alphas_cumprod()``),
   with classifier-free guidance batched video-major: rows
   ``[cond frame 0..F-1, uncond frame 0..F-1]``, on random conditioning;
4. a stand-in for the VAE: a fixed linear map from the 4 latent channels to
   RGB, then an 8x upsample (there is no VAE: its weights would be random too);
5. ping-pong (``add_reverse``) for closed loop 'A' when the clip fits in one
   context window, and the video writers (``motion_module.video.save_video``).

EVERY WEIGHT IS RANDOM, so the frames are noise.  The point is to show on a
fresh machine that the engine runs end to end; it says nothing about quality.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import motion_module as mm  # noqa: E402
from motion_module.context import CLOSED_LOOP_MODES, context_windows, stride_levels  # noqa: E402
from motion_module.request.infotext import format_infotext  # noqa: E402
from motion_module.request.params import AnimateDiffParams, ParamError, ResolvedParams, check_context_fits  # noqa: E402
from motion_module.synthetic import random_model  # noqa: E402
from motion_module.video import VideoOptions, add_reverse, save_video  # noqa: E402
from motion_module.video.formats import FILE_FORMATS  # noqa: E402

RANDOM_WEIGHTS_NOTICE = (
    "NOTE: every weight in this demo (UNet, motion module, text conditioning) is RANDOM, so the frames are "
    "noise. Its purpose is to show that the AnimateDiff engine runs end to end on a fresh machine "
    "(no WebUI, no downloads): UNet + motion-module injection, context windows, sampling, decoding, "
    "video writers.")

CONTEXT_DIM = 64      # width of the (random) text conditioning; SD1.5 uses 768, SDXL 2048
CONTEXT_TOKENS = 8    # tokens per prompt; the real text encoders give 77
VAE_SCALE = 8         # pixels per latent pixel, as with the real SD VAE
DEFAULT_FORMATS = ("GIF", "MP4", "WEBP")

# Stand-in for the VAE decoder: RGB = latent channels 0, 1, 2 minus half of
# channel 3.  Rows are latent channels, columns R, G, B.
LATENT_TO_RGB = torch.tensor([
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0],
    [0.0, 0.0, 1.0],
    [-0.5, -0.5, -0.5],
])

# Option names as the user typed them, for error messages about fields of
# AnimateDiffParams / ContextOptions / VideoOptions.
OPTION_FOR_FIELD = {
    "video_length": "--frames", "batch_size": "--context", "format": "--formats", "fps": "--fps",
    "loop_number": "--loop-number", "closed_loop": "--closed-loop", "stride": "--stride",
    "overlap": "--overlap",
}


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoConfig:
    """Validated settings of one demo run."""

    kind: mm.MotionKind
    params: AnimateDiffParams
    resolved: ResolvedParams
    context: mm.ContextOptions
    video: VideoOptions
    steps: int
    cfg_scale: float
    seed: int
    latent_width: int
    latent_height: int
    model_channels: int
    out: Path
    threads: int

    @property
    def frames(self) -> int:
        return self.resolved.video_length


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _latent_size(text: str) -> tuple[int, int]:
    """'16' -> (16, 16); '24x16' -> (24, 16) as (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected N or WxH in latent pixels, e.g. 16 or 24x16, got {text!r}")
    width = int(match.group(1))
    height = int(match.group(2) or width)
    if not (1 <= width <= 256 and 1 <= height <= 256):
        raise argparse.ArgumentTypeError(f"latent width and height must be in 1..256, got {text!r}")
    return width, height


def build_parser() -> argparse.ArgumentParser:
    kinds = "\n".join(f"  {k.name:<11} {k.description}; up to {k.default_max_frames} frames per window"
                      for k in mm.KINDS.values())
    parser = argparse.ArgumentParser(
        prog="animatediff_demo.py",
        description=__doc__.split("\n\n", 1)[0] + "\n\n" + textwrap.fill(RANDOM_WEIGHTS_NOTICE, 79),
        epilog=f"motion-module kinds:\n{kinds}\n\n" + textwrap.fill(
            "Files are written to OUT/AnimateDiff/YYYY-MM-DD/ as NNNNN-SEED.EXT, like the WebUI extension "
            "does. Exit code 2 means bad arguments, 1 that a format could not be written.", 79),
        formatter_class=_HelpFormatter)
    parser.add_argument("--kind", default="v2", choices=list(mm.KINDS),
                        help="motion-module kind; sdxl and hotshot use SDXL's UNet block layout")
    parser.add_argument("--frames", type=int, default=24,
                        help="frames of the video; 0 = the context batch size, as in the extension")
    parser.add_argument("--context", type=int, default=16,
                        help="context batch size: frames per motion-module window (at most the kind's "
                             "position-encoding length); more frames than this use sliding windows")
    parser.add_argument("--overlap", type=int, default=-1,
                        help="frames shared by consecutive windows, -1 = context // 4; must be < context")
    parser.add_argument("--stride", type=int, default=1, help="context stride: number of dilation levels")
    parser.add_argument("--closed-loop", default="R-P", choices=list(CLOSED_LOOP_MODES),
                        help="closed-loop mode; 'A' on a clip that fits in one window also adds the "
                             "reversed frames (ping-pong) to the output")
    parser.add_argument("--steps", type=_int_at_least(1), default=4, help="sampling steps (Euler)")
    parser.add_argument("--cfg-scale", type=_finite_float, default=7.5, help="classifier-free guidance scale")
    parser.add_argument("--seed", type=_int_at_least(0), default=0,
                        help="seed of the weights, conditioning and noise")
    parser.add_argument("--latent-size", type=_latent_size, default="16", metavar="N|WxH",
                        help=f"latent size; frames are {VAE_SCALE}x larger. Must be a multiple of 8 "
                             "(SD1.5 layout) or 4 (SDXL layout)")
    parser.add_argument("--model-channels", type=_int_at_least(32), default=32,
                        help="UNet base width (a multiple of 32; the real models use 320)")
    parser.add_argument("--formats", nargs="+", default=list(DEFAULT_FORMATS), metavar="FORMAT",
                        help=f"output formats, any of {', '.join(FILE_FORMATS)} (space- or comma-separated)")
    parser.add_argument("--fps", type=int, default=8, help="frames per second of the written videos")
    parser.add_argument("--loop-number", type=int, default=0,
                        help="GIF/WEBP: times the animation plays, 0 = forever")
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder")
    parser.add_argument("--threads", type=_int_at_least(0), default=1,
                        help="CPU threads for torch, 0 = torch's default (all cores). The tensors are "
                             "small, so extra threads mostly wait on each other; on a busy machine "
                             "several threads can be many times slower than one")
    return parser


def _formats(raw: list[str]) -> list[str]:
    """Space- and comma-separated names; the extension's parameter rules check them."""
    return [name.strip() for item in raw for name in item.split(",") if name.strip()]


def _check_latent_size(kind: mm.MotionKind, width: int, height: int) -> None:
    multiple = 1 << (len(kind.channels) - 1)  # one halving per UNet level after the first
    if width % multiple or height % multiple:
        layout = "SDXL" if kind.is_sdxl else "SD1.5"
        raise ValueError(f"the {layout} UNet layout needs a latent size that is a multiple of {multiple}, "
                         f"got {width}x{height}")


def ensure_writable(folder: Path) -> None:
    """Create `folder` if needed and prove a file can be written there (OSError if not)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise OSError(f"cannot write to the output folder {str(folder)!r}: {e.strerror or e}") from None


def _params(args, formats: list[str]) -> AnimateDiffParams:
    """The extension's own parameter object, so its validation and messages apply."""
    return AnimateDiffParams(
        enable=True, model=f"random {args.kind} motion module (demo)", format=formats,
        video_length=args.frames, fps=args.fps, loop_number=args.loop_number, closed_loop=args.closed_loop,
        batch_size=args.context, stride=args.stride, overlap=args.overlap)


def _check_model_channels(channels: int) -> None:
    if channels % 32:
        raise ValueError(f"must be a multiple of 32 (GroupNorm uses 32 groups), got {channels}")


def _validate(args, parser: argparse.ArgumentParser) -> DemoConfig:
    """Check everything before any work starts; errors end in parser.error (exit 2)."""

    def check(option, fn, *fn_args, **fn_kwargs):
        try:
            return fn(*fn_args, **fn_kwargs)
        except ParamError as e:  # names the AnimateDiffParams field at fault
            message = str(e).removeprefix("AnimateDiff: ")
            parser.error(f"argument {OPTION_FOR_FIELD.get(e.field, '--' + e.field)}: {message}")
        except (ValueError, OSError) as e:
            parser.error(f"argument {option}: {e}")

    kind = mm.get_kind(args.kind)
    formats = _formats(args.formats)
    # "Frame" asks the WebUI to return the frames in its answer; the demo has no answer to put them in.
    if any(name.lower() == "frame" for name in formats):
        parser.error(f"argument --formats: Frame returns frames in a WebUI answer and means nothing here; "
                     f"allowed: {', '.join(FILE_FORMATS)}")
    check("--latent-size", _check_latent_size, kind, *args.latent_size)
    check("--model-channels", _check_model_channels, args.model_channels)
    params = check("--frames", _params, args, formats)
    resolved = check("--frames", params.resolve)
    check("--context", check_context_fits, resolved, kind.default_max_frames, f"the {kind.name} motion module")
    context = mm.ContextOptions(length=resolved.context_length, overlap=resolved.overlap, stride=resolved.stride,
                                closed_loop=resolved.closed_loop)
    video = VideoOptions(fps=params.fps, loop_number=params.loop_number)
    check("--out", ensure_writable, args.out)
    return DemoConfig(kind=kind, params=params, resolved=resolved, context=context, video=video,
                      steps=args.steps, cfg_scale=args.cfg_scale, seed=args.seed,
                      latent_width=args.latent_size[0], latent_height=args.latent_size[1],
                      model_channels=args.model_channels, out=args.out, threads=args.threads)


def parse_args(argv=None) -> DemoConfig:
    """Parse and validate; on bad arguments print usage + message and exit 2."""
    parser = build_parser()
    return _validate(parser.parse_args(argv), parser)


# ---------------------------------------------------------------------------
# Models (random weights)
# ---------------------------------------------------------------------------

def _unet_kwargs(kind: mm.MotionKind, model_channels: int) -> dict:
    common = dict(image_size=32, in_channels=4, out_channels=4, model_channels=model_channels,
                  num_res_blocks=2, use_spatial_transformer=True, transformer_depth=1,
                  context_dim=CONTEXT_DIM, legacy=False)
    if kind.is_sdxl:
        # SDXL: 3 levels, no attention at the first, linear transformer projections.
        return dict(common, channel_mult=[1, 2, 4], attention_resolutions=[2, 4], num_head_channels=16,
                    use_linear_in_transformer=True)
    return dict(common, channel_mult=[1, 2, 4, 4], attention_resolutions=[4, 2, 1], num_heads=8)


def randomize_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Fan-in scaled normal weights, zero biases, identity norms.

    ldm zero-initialises the output conv and proj_out layers (a training
    trick); left at zero the UNet would predict eps = 0 everywhere and the
    motion module would have no visible effect, so everything is redrawn.
    """
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.GroupNorm, nn.LayerNorm)):
                nn.init.ones_(layer.weight)
                nn.init.zeros_(layer.bias)
                continue
            for name, param in layer.named_parameters(recurse=False):
                if param.dim() > 1:
                    fan_in = param[0].numel()
                    param.copy_(torch.randn(param.shape, generator=generator) / math.sqrt(fan_in))
                else:
                    param.zero_()
    return module


def build_unet(kind: mm.MotionKind, model_channels: int, seed: int) -> nn.Module:
    """A small ldm UNetModel with the kind's block layout and random weights."""
    try:
        from ldm.modules.diffusionmodules.openaimodel import UNetModel
    except ImportError as e:
        raise SystemExit(f"error: the demo needs the ldm package ({e}); install it with\n"
                         "  python3 -m pip install --no-deps stable-diffusion-sdkit einops omegaconf") from None
    with torch.device("meta"):  # skip ldm's own initialisation, it is redrawn anyway
        unet = UNetModel(**_unet_kwargs(kind, model_channels))
    unet.to_empty(device="cpu")
    randomize_(unet, torch.Generator().manual_seed(seed))
    return unet.eval().requires_grad_(False)


def unet_widths(kind: mm.MotionKind, model_channels: int) -> tuple[int, ...]:
    """Channels of each UNet level, i.e. of the motion modules placed there."""
    return tuple(model_channels * m for m in _unet_kwargs(kind, model_channels)["channel_mult"])


def build_motion_model(kind: mm.MotionKind, model_channels: int, seed: int) -> mm.MotionModel:
    return random_model(kind.name, channels=unet_widths(kind, model_channels), seed=seed)


# ---------------------------------------------------------------------------
# Sampling: k-diffusion's denoiser wrapper and Euler sampler, as the WebUI runs
# ---------------------------------------------------------------------------

def import_k_diffusion():
    """k-diffusion's `sampling` and `external` modules.

    The package's ``__init__`` imports its training stack too (torchvision,
    clean-fid, kornia, ...), and the only torchvision wheel for torch 2.13 on
    PyPI is a CUDA build. Where the whole package imports (the WebUI's own
    environment), it is used as is; otherwise its two sampling modules are
    loaded from the installed package under a package shell whose ``utils``
    holds the one helper they use (``append_dims``, the same three lines).
    """
    try:
        import k_diffusion
        return k_diffusion.sampling, k_diffusion.external
    except ImportError:
        pass
    import importlib
    import importlib.util
    import types

    spec = importlib.util.find_spec("k_diffusion")
    if spec is None:
        raise SystemExit("error: the demo needs the k-diffusion package; install it with\n"
                         "  python3 -m pip install --no-deps k-diffusion scipy torchdiffeq torchsde tqdm")
    for name in [n for n in sys.modules if n == "k_diffusion" or n.startswith("k_diffusion.")]:
        del sys.modules[name]  # a half-imported package from the attempt above
    package = types.ModuleType("k_diffusion")
    package.__path__ = list(spec.submodule_search_locations)
    utils = types.ModuleType("k_diffusion.utils")

    def append_dims(x, target_dims):
        return x[(...,) + (None,) * (target_dims - x.ndim)]

    utils.append_dims = append_dims
    package.utils = utils
    sys.modules.update({"k_diffusion": package, "k_diffusion.utils": utils})
    return importlib.import_module("k_diffusion.sampling"), importlib.import_module("k_diffusion.external")


K_SAMPLING, K_EXTERNAL = import_k_diffusion()


class GuidedUNet(nn.Module):
    """The eps-predicting UNet with classifier-free guidance, as k-diffusion's
    DiscreteEpsDDPMDenoiser calls its inner model: (x, t) -> eps. The UNet sees
    the rows [cond frames 0..F-1, uncond frames 0..F-1] (video-major)."""

    def __init__(self, unet, cond: torch.Tensor, uncond: torch.Tensor, cfg_scale: float):
        super().__init__()
        self.unet = unet
        self.context = torch.cat([cond, uncond])
        self.cfg_scale = cfg_scale

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        rows = torch.cat([x, x])
        eps_cond, eps_uncond = self.unet(rows, torch.cat([t, t]), context=self.context).chunk(2)
        return eps_uncond + self.cfg_scale * (eps_cond - eps_uncond)


def build_denoiser(unet, alphas_cumprod: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor, cfg_scale: float):
    """k-diffusion's denoiser D(x, sigma) over the kind's training schedule."""
    return K_EXTERNAL.DiscreteEpsDDPMDenoiser(GuidedUNet(unet, cond, uncond, cfg_scale), alphas_cumprod,
                                              quantize=False)


def sample_euler(denoiser, x: torch.Tensor, sigmas: torch.Tensor, on_step=None) -> torch.Tensor:
    """k-diffusion's Euler sampler; `x` is the noise already scaled by sigmas[0]."""
    callback = None if on_step is None else (lambda info: on_step(info["i"], len(sigmas) - 1))
    return K_SAMPLING.sample_euler(denoiser, x, sigmas, callback=callback, disable=True)


def random_conditioning(frames: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 'prompt' and 'negative prompt' embeddings, one copy per frame."""
    cond, uncond = torch.randn(2, 1, CONTEXT_TOKENS, CONTEXT_DIM, generator=generator).unbind(0)
    return cond.expand(frames, -1, -1), uncond.expand(frames, -1, -1)


def generate_latents(config: DemoConfig, log=print) -> torch.Tensor:
    """Sample one video's latents [frames, 4, h, w] with the motion module injected."""
    kind, frames = config.kind, config.frames
    unet = build_unet(kind, config.model_channels, config.seed)
    model = build_motion_model(kind, config.model_channels, config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    cond, uncond = random_conditioning(frames, generator)
    denoiser = build_denoiser(unet, mm.schedule_for(kind).alphas_cumprod(), cond, uncond, config.cfg_scale)
    sigmas = denoiser.get_sigmas(config.steps)
    noise = torch.randn(frames, 4, config.latent_height, config.latent_width, generator=generator)
    started = time.perf_counter()

    def on_step(i, total):
        log(f"  step {i + 1}/{total}  sigma {sigmas[i]:.3f} -> {sigmas[i + 1]:.3f}  "
            f"({time.perf_counter() - started:.1f} s)")

    with torch.no_grad(), mm.inject(unet, model, frames=frames, context=config.context):
        latents = sample_euler(denoiser, noise * sigmas[0], sigmas, on_step)
    if not torch.isfinite(latents).all():
        raise RuntimeError("sampling produced non-finite latents")
    return latents


# ---------------------------------------------------------------------------
# Decoding without a VAE
# ---------------------------------------------------------------------------

def latents_to_rgb(latents: torch.Tensor) -> torch.Tensor:
    """[F, 4, h, w] latents -> [F, 3, 8h, 8w] floats in [0, 1].

    Fixed linear map (LATENT_TO_RGB), then one normalisation for the whole
    video (mean 0.5, +-2 standard deviations span the range, so changes between
    frames stay visible), then a bilinear 8x upsample to the VAE's output size.
    """
    rgb = torch.einsum("fchw,cr->frhw", latents.float(), LATENT_TO_RGB)
    rgb = (rgb - rgb.mean()) / (4 * rgb.std().clamp(min=1e-8)) + 0.5
    rgb = F.interpolate(rgb, scale_factor=VAE_SCALE, mode="bilinear", align_corners=False)
    return rgb.clamp(0, 1)


def to_images(rgb: torch.Tensor):
    from PIL import Image

    pixels = (rgb * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    return [Image.fromarray(frame, "RGB") for frame in pixels]


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def infotext(config: DemoConfig) -> str:
    """A WebUI-style infotext: prompt line, then 'key: value' pairs with the AnimateDiff entry."""
    schedule = mm.schedule_for(config.kind)
    entry = format_infotext(config.params, config.resolved, mm_hash="", schedule=schedule.label,
                            is_img2img=False)
    size = f"{config.latent_width * VAE_SCALE}x{config.latent_height * VAE_SCALE}"
    return (f"random conditioning (demo; all weights random)\n"
            f"Steps: {config.steps}, Sampler: Euler, CFG scale: {config.cfg_scale:g}, Seed: {config.seed}, "
            f"Size: {size}, AnimateDiff: {json.dumps(entry, ensure_ascii=False)}")


def write_outputs(config: DemoConfig, images):
    if config.resolved.ping_pong:
        images = add_reverse(images)
    options = config.video.with_(infotext=infotext(config))
    return save_video(images, config.params.format, options, config.out, config.seed)


# ---------------------------------------------------------------------------
# What the context scheduler does, for the printout
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ContextStats:
    """What the scheduler will do, for display.  See :func:`describe_windows`."""

    num_frames: int
    length: int
    overlap: int
    stride_levels: int
    steps: int
    windows_per_step: tuple[int, ...] = field(repr=False)
    frames_per_pass: int = 0

    @property
    def single_window(self) -> bool:
        return self.num_frames <= self.length

    @property
    def min_windows(self) -> int:
        return min(self.windows_per_step)

    @property
    def max_windows(self) -> int:
        return max(self.windows_per_step)

    @property
    def total_passes(self) -> int:
        """UNet passes over all steps (each pass = one window; doubled rows with batched CFG)."""
        return sum(self.windows_per_step)

    @property
    def evaluations_per_frame(self) -> float:
        """Average times a frame is predicted per step (1.0 = no overlap at all)."""
        return self.total_passes * self.frames_per_pass / (self.steps * self.num_frames)

    def __str__(self) -> str:
        if self.single_window:
            return (f"{self.num_frames} frames fit in one context of {self.length}: "
                    f"1 UNet pass per step; stride and overlap have no effect.")
        per_step = (str(self.min_windows) if self.min_windows == self.max_windows
                    else f"{self.min_windows}-{self.max_windows}")
        return (f"{self.num_frames} frames, context {self.length}, overlap {self.overlap}, "
                f"{self.stride_levels} stride level(s): {per_step} windows (UNet passes) per step, "
                f"{self.total_passes} passes over {self.steps} step(s); "
                f"each frame is predicted {self.evaluations_per_frame:.2f}x per step on average.")


def describe_windows(num_frames: int, options: mm.ContextOptions, steps: int = 1) -> ContextStats:
    """Summarise the schedule over denoiser calls ``0 .. steps-1`` (``str()`` it for the UI)."""
    counts = tuple(len(context_windows(num_frames, s, options)) for s in range(steps))
    return ContextStats(
        num_frames=num_frames,
        length=options.length,
        overlap=options.overlap,
        stride_levels=stride_levels(num_frames, options.length, options.stride),
        steps=steps,
        windows_per_step=counts,
        frames_per_pass=min(num_frames, options.length),
    )


def describe(config: DemoConfig) -> str:
    kind = config.kind
    layout = "SDXL" if kind.is_sdxl else "SD1.5"
    windows = describe_windows(config.frames, config.context, config.steps)
    widths = ", ".join(map(str, unet_widths(kind, config.model_channels)))
    ping_pong = " Closed loop A: the reversed frames are appended (ping-pong)." if config.resolved.ping_pong else ""
    return (f"kind {kind.name}: {kind.description}; {layout} UNet layout, widths {widths}\n"
            f"schedule {mm.schedule_for(kind).name} ({mm.schedule_for(kind).label}); Euler, {config.steps} "
            f"step(s), CFG {config.cfg_scale:g}, rows per UNet pass = 2 x frames (cond, uncond)\n"
            f"context: {windows}{ping_pong}\n"
            f"latents {config.latent_width}x{config.latent_height} -> frames "
            f"{config.latent_width * VAE_SCALE}x{config.latent_height * VAE_SCALE} (linear map, no VAE)")


def main(argv=None) -> int:
    config = parse_args(argv)
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    print(RANDOM_WEIGHTS_NOTICE, flush=True)
    print(describe(config), flush=True)
    latents = generate_latents(config, log=lambda line: print(line, flush=True))
    saved = write_outputs(config, to_images(latents_to_rgb(latents)))
    frames = 2 * config.frames - 2 if config.resolved.ping_pong and config.frames > 1 else config.frames
    print(f"wrote {frames} frames{' (ping-pong)' if config.resolved.ping_pong else ''} "
          f"in {time.perf_counter() - started:.1f} s:")
    for fmt, path in saved.paths.items():
        print(f"  {fmt}: {path}")
    for fmt, message in saved.errors.items():
        print(f"error: writing {fmt} failed: {message}", file=sys.stderr)
    print("Reminder: random weights, so these frames are noise; the demo shows the pipeline works.")
    return 0 if saved.ok else 1


if __name__ == "__main__":
    sys.exit(main())

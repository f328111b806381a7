"""The no-WebUI demo (demo/animatediff_demo.py): end to end, its sampler, and its argument checks."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "animatediff_demo.py"


def load_demo():
    spec = importlib.util.spec_from_file_location("animatediff_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


demo = load_demo()


def run_demo(cwd, *args):
    return subprocess.run([sys.executable, str(DEMO), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def written_paths(stdout):
    return {m.group(1): Path(m.group(2)) for m in re.finditer(r"^  ([A-Z0-9]+): (.+)$", stdout, re.M)}


def pil_frames(path):
    with Image.open(path) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            im.load()  # WEBP: Pillow sets the duration when the frame is decoded
            durations.append(im.info["duration"])
        return im.n_frames, im.size, durations


def mp4_frames(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    count = sum(1 for _ in reader)
    return count, tuple(meta["size"]), meta["fps"]


def check_videos(paths, frames, size, fps):
    for fmt in ("GIF", "WEBP"):
        count, got_size, durations = pil_frames(paths[fmt])
        assert (count, got_size) == (frames, size), fmt
        # Per-frame durations are rounded (GIF: centiseconds) but add up to the clip length.
        assert abs(sum(durations) - 1000 * frames / fps) <= 10, (fmt, durations)
    count, got_size, got_fps = mp4_frames(paths["MP4"])
    assert (count, got_size) == (frames, size)
    assert got_fps == pytest.approx(fps)


def test_sd15_kind_with_context_windows_end_to_end(tmp_path):
    out = tmp_path / "out"
    result = run_demo(tmp_path, "--kind", "v2", "--frames", "10", "--context", "8", "--overlap", "2",
                      "--steps", "2", "--latent-size", "8x16", "--fps", "10", "--formats", "GIF,MP4", "WEBP",
                      "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "RANDOM" in result.stdout and "noise" in result.stdout
    assert "2 windows (UNet passes) per step" in result.stdout  # the context scheduler really ran
    paths = written_paths(result.stdout)
    assert set(paths) == {"GIF", "MP4", "WEBP"}
    assert all(p.is_file() and p.is_relative_to(out / "AnimateDiff") for p in paths.values())
    check_videos(paths, frames=10, size=(64, 128), fps=10)


def test_sdxl_kind_single_window_ping_pong_and_txt(tmp_path):
    result = run_demo(tmp_path, "--kind", "sdxl", "--frames", "5", "--context", "8", "--closed-loop", "A",
                      "--steps", "2", "--latent-size", "8", "--fps", "12",
                      "--formats", "GIF", "MP4", "WEBP", "TXT", "--out", "outputs")
    assert result.returncode == 0, result.stderr
    # A relative --out is relative to the working directory, and so are the printed paths.
    paths = {fmt: tmp_path / p for fmt, p in written_paths(result.stdout).items()}
    assert all(p.is_file() and p.is_relative_to(tmp_path / "outputs") for p in paths.values())
    check_videos(paths, frames=2 * 5 - 2, size=(64, 64), fps=12)  # 0 1 2 3 4 3 2 1
    text = paths["TXT"].read_text()
    assert "Sampler: Euler" in text and "closed_loop: A" in text and "scaled_linear 0.00085-0.02" in text


BAD_ARGUMENTS = [
    (["--kind", "v9"], "--kind: invalid choice: 'v9'"),
    (["--frames", "-1"], "--frames: 'video_length' must be an integer between 0 and 10000, got -1"),
    (["--frames", "20000"], "--frames: 'video_length' must be an integer between 0 and 10000, got 20000"),
    (["--frames", "many"], "--frames: invalid int value: 'many'"),
    (["--kind", "v1", "--frames", "40", "--context", "25"],
     "--context: 'batch_size' (context batch size) must be at most 24 for the v1 motion module "
     "(its position-encoding length), got 25"),
    (["--kind", "hotshot", "--frames", "32", "--context", "32"], "position-encoding length), got 32"),
    # Both ends of the overlap range name the same range, as in the extension.
    (["--overlap", "-2"], "--overlap: 'overlap' must be an integer between -1 and 15 (context batch size - 1)"),
    (["--context", "8", "--overlap", "8"], "--overlap: 'overlap' must be an integer between -1 and 7"),
    (["--formats", "GIF,MOV"], "--formats: 'format' must be a list from"),
    (["--formats", "TXT"], "--formats: 'format' must be a list from"),
    (["--formats", "GIF,Frame"], "--formats: Frame returns frames in a WebUI answer and means nothing here; "
                                 "allowed: GIF, MP4, WEBP, WEBM, PNG, TXT"),
    (["--fps", "0"], "--fps: 'fps' must be an integer between 1 and 240"),
    (["--stride", "0"], "--stride: 'stride' must be an integer between 1 and 16"),
    (["--closed-loop", "B"], "--closed-loop: invalid choice"),
    (["--latent-size", "12"], "--latent-size: the SD1.5 UNet layout needs a latent size that is a multiple of 8"),
    (["--kind", "sdxl", "--latent-size", "10x8"], "multiple of 4"),
    (["--latent-size", "big"], "--latent-size: expected N or WxH"),
    (["--model-channels", "48"], "--model-channels: must be a multiple of 32"),
]


@pytest.mark.parametrize("argv, message", BAD_ARGUMENTS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_arguments_exit_2_with_a_clear_message(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_args([*argv, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and message in err, err


def test_unwritable_output_folder_fails_before_any_work(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    result = run_demo(tmp_path, "--out", str(not_a_folder / "sub"))
    assert result.returncode == 2
    assert "argument --out: cannot write to the output folder" in result.stderr
    assert "RANDOM" not in result.stdout  # failed during validation, nothing was sampled


def test_defaults_are_the_documented_command(tmp_path):
    config = demo.parse_args(["--out", str(tmp_path)])
    assert (config.kind.name, config.frames, config.context.length, config.steps) == ("v2", 24, 16, 4)
    assert config.params.format == ["GIF", "MP4", "WEBP"]


# -- the sampler ---------------------------------------------------------------

class DiracUNet:
    """The exact eps-predictor for data that is always `x0`, in ldm's conventions:
    input sqrt(a_t) * x0 + sqrt(1 - a_t) * eps at integer timestep t."""

    def __init__(self, x0, alphas_cumprod):
        self.x0, self.ac, self.contexts = x0, alphas_cumprod.double(), []

    def __call__(self, x, t, context):
        self.contexts.append(context)
        a = self.ac[t.round().long()].view(-1, 1, 1, 1)
        x0 = torch.cat([self.x0, self.x0]).double()
        return ((x.double() - a.sqrt() * x0) / (1 - a).sqrt()).float()


@pytest.mark.parametrize("kind", ["v2", "sdxl"])
def test_euler_sampler_recovers_the_data_of_an_exact_denoiser(kind):
    import motion_module as mm

    ac = mm.schedule_for(kind).alphas_cumprod()
    x0 = torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    cond, uncond = torch.zeros(3, 1, 2), torch.ones(3, 1, 2)
    unet = DiracUNet(x0, ac)
    denoiser = demo.build_denoiser(unet, ac, cond, uncond, cfg_scale=5.0)
    sigmas = denoiser.get_sigmas(4)  # t = 999, 666, 333, 0: integers, as DiracUNet needs
    assert sigmas[0] == pytest.approx(float(((1 - ac[-1]) / ac[-1]).sqrt()), rel=1e-5)
    assert sigmas[-1] == 0 and bool((sigmas[:-1] > sigmas[1:]).all())
    noise = torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(2))
    steps = []
    out = demo.sample_euler(denoiser, noise * sigmas[0], sigmas, on_step=lambda i, n: steps.append((i, n)))
    assert torch.allclose(out, x0, atol=1e-4)
    assert steps == [(0, 4), (1, 4), (2, 4), (3, 4)]
    # CFG rows are video-major: all cond frames, then all uncond frames.
    assert all(torch.equal(c, torch.cat([cond, uncond])) for c in unet.contexts)


def test_decoding_maps_latents_to_upsampled_rgb_in_range():
    latents = torch.randn(2, 4, 3, 5) * 50
    rgb = demo.latents_to_rgb(latents)
    assert rgb.shape == (2, 3, 24, 40)
    assert float(rgb.min()) >= 0 and float(rgb.max()) <= 1
    images = demo.to_images(rgb)
    assert [im.size for im in images] == [(40, 24)] * 2 and images[0].mode == "RGB"


def test_describe_windows():
    import motion_module as mm

    stats = demo.describe_windows(32, mm.ContextOptions(length=16, overlap=4, stride=1, closed_loop="R-P"), steps=3)
    assert stats.windows_per_step == (3, 3, 3)
    assert stats.total_passes == 9 and stats.overlap == 4 and stats.stride_levels == 1
    assert stats.evaluations_per_frame == pytest.approx(1.5)
    assert "3 windows" in str(stats)

    short = demo.describe_windows(12, mm.ContextOptions(length=16, overlap=4, stride=1, closed_loop="R-P"), steps=20)
    assert short.single_window and short.total_passes == 20
    assert "one context" in str(short)

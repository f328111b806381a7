"""The benchmarks refuse bad options before any work, naming the option (exit 2)."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script, args, message", [
    ("unet_step.py", ["--frames", "0"], "argument --frames: 'batch_size' must be an integer between 1 and 64"),
    ("unet_step.py", ["--kind", "v1", "--frames", "40"], "must be at most 24 for the v1 motion module"),
    ("unet_step.py", ["--latent", "5"], "argument --latent: the SD1.5 UNet needs a positive multiple of 8"),
    ("unet_step.py", ["--kind", "sdxl", "--latent", "6"], "positive multiple of 4"),
    ("unet_step.py", ["--repeats", "0"], "argument --repeats: must be at least 1"),
    ("long_video.py", ["--frames", "16", "0"], "argument --frames: each must be at least 1"),
    ("long_video.py", ["--context", "99"], "'batch_size' must be an integer between 1 and 64"),
    ("weight_memory.py", ["--kind", "v4"], "argument --kind: invalid choice: 'v4'"),
    ("step_cache.py", ["--intervals", "0"], "argument --intervals: each must be at least 1, got 0"),
    ("step_cache.py", ["--depth", "11"], "argument --depth: each must be between 0 and 10 for the SD1.5 UNet"),
    ("videos_per_batch.py", ["--videos", "9"], "argument --videos: 'videos_per_batch' must be an integer between 1 "
                                                "and 8, got 9"),
    ("videos_per_batch.py", ["--frames", "40", "--context", "30", "--kind", "v1"],
     "argument --context: 'batch_size' (context batch size) must be at most 24 for the v1 motion module"),
    ("videos_per_batch.py", ["--latent", "12"], "argument --latent: the SD1.5 UNet needs a positive multiple of 8"),
    ("webui_speed.py", ["--pid", "1", "--model", "m", "--cases", "cache,fp8"],
     "--cases: unknown ['fp8']; allowed: plain, cache, v2v, options"),
    ("webui_speed.py", ["--pid", "1", "--model", "m", "--options", "FP8 weights,fp16"],
     "--options: unknown ['fp16']; allowed: sdp (default), sdp-no-mem"),
])
def test_bad_options_exit_2_naming_the_option(script, args, message):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_cuda_without_cuda_is_refused():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "unet_step.py"), "--device", "cuda"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "torch sees no CUDA device" in out.stderr


def test_help_shows_defaults():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "unet_step.py"), "--help"], capture_output=True,
                         text=True, timeout=120)
    assert "(default: 16)" in out.stdout and "(default: v2)" in out.stdout

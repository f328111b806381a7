"""GIF writer: decoded back with Pillow and checked frame by frame."""

import logging
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import GifImagePlugin, Image


from motion_module.video import gif as gif_mod
from motion_module.video.gif import gif_delays_cs, gif_loop_value, write_gif
from motion_module.video.options import VideoOptions
from video_frames import mae, moving_gradient

INFOTEXT = "1girl, smile\nNegative prompt: blurry, ünïcödé, 中文\nSteps: 20, Seed: 42, AnimateDiff: \"fps: 8\""


def read_gif(path):
    frames, durations = [], []
    with Image.open(path) as im:
        info = dict(im.info)
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
            frames.append(im.convert("RGB"))
    return frames, durations, info


def gif_blocks(path):
    """Independent look at the GIF structure: (has_global_table, local_table_count, images)."""
    data = Path(path).read_bytes()
    assert data[:6] in (b"GIF87a", b"GIF89a")
    flags = data[10]
    pos = 13
    has_gct = bool(flags & 0x80)
    if has_gct:
        pos += 3 * (2 << (flags & 7))
    local = images = 0

    def skip_sub_blocks(p):
        while data[p]:
            p += data[p] + 1
        return p + 1

    while data[pos] != 0x3B:
        if data[pos] == 0x21:
            pos = skip_sub_blocks(pos + 2)
        elif data[pos] == 0x2C:
            images += 1
            packed = data[pos + 9]
            pos += 10
            if packed & 0x80:
                local += 1
                pos += 3 * (2 << (packed & 7))
            pos = skip_sub_blocks(pos + 1)  # LZW minimum code size, then data
        else:
            raise AssertionError(f"unexpected GIF block 0x{data[pos]:02x} at {pos}")
    return has_gct, local, images


def test_delays_follow_exact_timeline():
    assert gif_delays_cs(8, 8) == [13, 12, 13, 12, 13, 12, 13, 12]
    assert sum(gif_delays_cs(16, 8)) == 200
    assert gif_delays_cs(3, 10) == [10, 10, 10]
    assert sum(gif_delays_cs(30, 29.97)) == round(30 * 100 / 29.97)
    # 3 fps = 33.33 cs: never drifts by more than half a centisecond
    d = gif_delays_cs(100, 3)
    for i in range(1, 101):
        assert abs(sum(d[:i]) - i * 100 / 3) <= 0.5


def test_delays_clamped_for_very_high_fps(caplog):
    with caplog.at_level(logging.WARNING):
        assert min(gif_delays_cs(10, 100)) >= 2
    assert "GIF cannot show" in caplog.text


def test_loop_semantics():
    assert gif_loop_value(0) == 0
    assert gif_loop_value(1) is None
    assert gif_loop_value(3) == 2


@pytest.mark.parametrize("fps", [8, 10])
def test_gif_roundtrip(tmp_path, fps):
    src = moving_gradient(16)
    path = tmp_path / "a.gif"
    write_gif(src, path, VideoOptions(fps=fps, loop_number=0, infotext=INFOTEXT))
    frames, durations, info = read_gif(path)
    assert len(frames) == 16
    assert all(f.size == (48, 32) for f in frames)
    # What players read back: whole centiseconds, total exactly n/fps seconds.
    assert sum(durations) == round(16 * 1000 / fps)
    assert all(abs(d - 1000 / fps) <= 5 for d in durations)
    assert info["loop"] == 0
    assert info["comment"].decode("utf-8") == INFOTEXT
    for got, want in zip(frames, src):
        assert mae(got, want) < 8
    assert not [p for p in tmp_path.iterdir() if p.name != "a.gif"]


@pytest.mark.parametrize("loop_number,stored", [(0, 0), (1, None), (2, 1), (5, 4)])
def test_gif_loop_count(tmp_path, loop_number, stored):
    path = tmp_path / "l.gif"
    write_gif(moving_gradient(3), path, VideoOptions(loop_number=loop_number))
    _, _, info = read_gif(path)
    assert info.get("loop") == stored


def test_gif_palette_is_global(tmp_path):
    src = moving_gradient(12)
    plain, pal = tmp_path / "plain.gif", tmp_path / "pal.gif"
    write_gif(src, plain, VideoOptions(infotext="x"))
    write_gif(src, pal, VideoOptions(infotext="x", gif_palette=True))
    has_gct, local, images = gif_blocks(pal)
    assert has_gct and local == 0 and images == 12
    assert gif_blocks(plain)[1] > 0  # Pillow's default: one palette per frame
    frames, durations, info = read_gif(pal)
    assert len(frames) == 12 and sum(durations) == 1500
    assert info["comment"] == b"x"
    colours = set()
    for got, want in zip(frames, src):
        assert mae(got, want) < 12
        colours |= set(map(tuple, np.asarray(got).reshape(-1, 3)))
    assert len(colours) <= 256


def test_gif_odd_size_single_frame(tmp_path):
    path = tmp_path / "one.gif"
    src = moving_gradient(1, 63, 47)
    write_gif(src, path, VideoOptions(fps=8, loop_number=0, infotext=INFOTEXT))
    frames, durations, info = read_gif(path)
    assert len(frames) == 1 and frames[0].size == (63, 47)
    assert durations == [130]
    assert info["comment"].decode() == INFOTEXT
    assert mae(frames[0], src[0]) < 8


def test_gif_200_frames(tmp_path):
    path = tmp_path / "long.gif"
    src = moving_gradient(200, 24, 16)
    write_gif(src, path, VideoOptions(fps=8, gif_palette=True))
    frames, durations, _ = read_gif(path)
    assert len(frames) == 200
    assert sum(durations) == 25000
    assert np.mean([mae(a, b) for a, b in zip(frames, src)]) < 12


def test_gif_frames_info_does_not_leak(tmp_path):
    # A frame opened from another GIF carries loop/comment/duration in
    # .info; Pillow would adopt them unless the writer drops them.
    src = moving_gradient(2)
    src[0].info.update({"loop": 7, "comment": b"old", "duration": 999})
    path = tmp_path / "clean.gif"
    write_gif(src, path, VideoOptions(loop_number=1))
    _, durations, info = read_gif(path)
    assert "loop" not in info and "comment" not in info
    assert durations == [130, 120]


def _fake_gifsicle(bin_dir: Path, exit_code=0):
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "gifsicle"
    marker = bin_dir / "called"
    # args: -O3 --no-warnings IN -o OUT
    exe.write_text(f'#!/bin/sh\necho "$@" > "{marker}"\ncp "$3" "$5"\nexit {exit_code}\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return marker


@pytest.mark.skipif(os.name == "nt", reason="shell-script stand-in")
def test_gifsicle_is_run_when_present(tmp_path, monkeypatch):
    marker = _fake_gifsicle(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", ""))
    out = tmp_path / "out"
    out.mkdir()
    write_gif(moving_gradient(4), out / "g.gif", VideoOptions(gif_gifsicle=True, infotext="c"))
    assert marker.read_text().split()[:2] == ["-O3", "--no-warnings"]
    frames, _, info = read_gif(out / "g.gif")
    assert len(frames) == 4 and info["comment"] == b"c"
    assert [p.name for p in out.iterdir()] == ["g.gif"]


@pytest.mark.skipif(os.name == "nt", reason="shell-script stand-in")
def test_gifsicle_failure_keeps_gif(tmp_path, monkeypatch, caplog):
    _fake_gifsicle(tmp_path / "bin", exit_code=1)
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", ""))
    out = tmp_path / "out"
    out.mkdir()
    with caplog.at_level(logging.WARNING):
        write_gif(moving_gradient(4), out / "g.gif", VideoOptions(gif_gifsicle=True))
    assert "gifsicle failed" in caplog.text
    assert len(read_gif(out / "g.gif")[0]) == 4
    assert [p.name for p in out.iterdir()] == ["g.gif"]


def test_gifsicle_missing_warns_and_still_writes(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(gif_mod.shutil, "which", lambda name: None)
    with caplog.at_level(logging.WARNING):
        write_gif(moving_gradient(3), tmp_path / "g.gif", VideoOptions(gif_gifsicle=True))
    assert "'gifsicle' program was not found" in caplog.text
    assert len(read_gif(tmp_path / "g.gif")[0]) == 3


@pytest.mark.skipif(shutil.which("gifsicle") is None, reason="gifsicle not installed")
def test_real_gifsicle_keeps_timing_loop_and_comment(tmp_path):
    src = moving_gradient(10)
    path = tmp_path / "real.gif"
    write_gif(src, path, VideoOptions(fps=8, loop_number=3, infotext=INFOTEXT, gif_gifsicle=True, gif_palette=True))
    frames, durations, info = read_gif(path)
    assert len(frames) == 10 and sum(durations) == 1250
    assert info["loop"] == 2 and info["comment"].decode() == INFOTEXT
    assert np.mean([mae(a, b) for a, b in zip(frames, src)]) < 12


def test_encoder_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    real = GifImagePlugin._write_frame_data
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(GifImagePlugin, "_write_frame_data", flaky)
    with pytest.raises(OSError, match="simulated"):
        write_gif(moving_gradient(6), tmp_path / "x.gif", VideoOptions())
    assert calls["n"] == 3
    assert list(tmp_path.iterdir()) == []


def test_never_overwrites(tmp_path):
    path = tmp_path / "x.gif"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        write_gif(moving_gradient(2), path, VideoOptions())
    assert path.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["x.gif"]

"""MP4 (H.264) and WEBM (VP9): decoded back with imageio-ffmpeg's reader."""

import re
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest


from media import parse_ffmetadata, read_comment

from motion_module.video import ffmpeg as ff
from motion_module.video.options import VideoOptions
from video_frames import mae, moving_gradient

INFOTEXT = 'a cat, "quoted" = value; #hash \\ back\nNegative prompt: ünïcödé, 中文\nSteps: 20, Seed: 7'


def decode(path):
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    frames = [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen]
    return meta, frames


def probe_text(path):
    """`ffmpeg -i` report (stderr): codec, pixel format and metadata."""
    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True, stdin=subprocess.DEVNULL,
    )
    return proc.stderr.decode("utf-8", "replace")


def comment_from_report(report):
    """Rebuild a multi-line tag from ffmpeg's 'comment : a' / '        : b' lines."""
    lines = report.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s+)comment\s+: (.*)$", line, re.IGNORECASE)
        if m:
            parts = [m.group(2)]
            for cont in lines[i + 1:]:
                c = re.match(r"^\s+: (.*)$", cont)
                if not c:
                    break
                parts.append(c.group(1))
            return "\n".join(parts)
    return None


@pytest.mark.parametrize("fmt,codec", [("mp4", "h264"), ("webm", "vp9")])
def test_roundtrip(tmp_path, fmt, codec):
    src = moving_gradient(16)
    path = tmp_path / f"v.{fmt}"
    writer = ff.write_mp4 if fmt == "mp4" else ff.write_webm
    writer(src, path, VideoOptions(fps=8, infotext=INFOTEXT))
    meta, frames = decode(path)
    assert len(frames) == 16
    assert meta["size"] == (48, 32)
    assert meta["fps"] == pytest.approx(8.0)
    assert meta["duration"] == pytest.approx(2.0, abs=0.13)
    for got, want in zip(frames, src):
        assert mae(got, want) < 8
    report = probe_text(path)
    assert codec in report and "yuv420p" in report
    assert comment_from_report(report) == INFOTEXT
    assert read_comment(path) == INFOTEXT
    assert [p.name for p in tmp_path.iterdir()] == [f"v.{fmt}"]


def test_mp4_odd_size_is_padded_with_edge_pixels(tmp_path):
    src = moving_gradient(4, 63, 47)
    path = tmp_path / "odd.mp4"
    ff.write_mp4(src, path, VideoOptions(fps=8))
    meta, frames = decode(path)
    assert meta["size"] == (64, 48)
    assert len(frames) == 4
    for got, want in zip(frames, src):
        assert mae(got[:47, :63], want) < 8
        # the extra column/row repeats the edge, not black
        assert mae(got[:47, 63], np.asarray(want)[:, 62]) < 12
        assert mae(got[47, :63], np.asarray(want)[46, :]) < 12


def test_webm_odd_size_kept(tmp_path):
    src = moving_gradient(3, 63, 47)
    path = tmp_path / "odd.webm"
    ff.write_webm(src, path, VideoOptions(fps=8))
    meta, frames = decode(path)
    assert meta["size"] == (63, 47) and len(frames) == 3
    assert np.mean([mae(a, b) for a, b in zip(frames, src)]) < 8


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_single_frame(tmp_path, fmt):
    src = moving_gradient(1, 63, 47)
    path = tmp_path / f"one.{fmt}"
    (ff.write_mp4 if fmt == "mp4" else ff.write_webm)(src, path, VideoOptions(fps=8, infotext="one"))
    meta, frames = decode(path)
    assert len(frames) == 1
    assert mae(frames[0][:47, :63], src[0]) < 8
    assert read_comment(path) == "one"


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_200_frames_fractional_fps(tmp_path, fmt):
    src = moving_gradient(200, 32, 24)
    path = tmp_path / f"long.{fmt}"
    (ff.write_mp4 if fmt == "mp4" else ff.write_webm)(src, path, VideoOptions(fps=29.97))
    meta, frames = decode(path)
    assert len(frames) == 200
    assert meta["fps"] == pytest.approx(29.97, abs=0.01)
    assert np.mean([mae(a, b) for a, b in zip(frames, src)]) < 8


def test_command_options():
    opts = VideoOptions(fps=29.97, mp4_crf=18)
    cmd = ff.build_command("mp4", 64, 48, opts, None, "out")
    assert "-preset" not in cmd and "-tune" not in cmd
    assert cmd[cmd.index("-crf") + 1] == "18"
    assert cmd[cmd.index("-framerate") + 1] == "2997/100"
    assert cmd[cmd.index("-pix_fmt", cmd.index("libx264")) + 1] == "yuv420p"
    cmd = ff.build_command("mp4", 64, 48, opts.with_(mp4_preset="veryfast", mp4_tune="animation"), "m.txt", "out")
    assert cmd[cmd.index("-preset") + 1] == "veryfast"
    assert cmd[cmd.index("-tune") + 1] == "animation"
    assert "-map_metadata" in cmd
    webm = ff.build_command("webm", 63, 47, VideoOptions(mp4_crf=30), None, "out")
    assert "libvpx-vp9" in webm and webm[webm.index("-crf") + 1] == "30"
    assert webm[webm.index("-b:v") + 1] == "0"


def test_preset_and_tune_are_applied(tmp_path):
    path = tmp_path / "p.mp4"
    ff.write_mp4(moving_gradient(3), path, VideoOptions(mp4_preset="ultrafast", mp4_tune="film", mp4_crf=30))
    _, frames = decode(path)
    assert len(frames) == 3


def test_ffmetadata_escaping_roundtrip():
    text = "a=b;c#d\\e\nline2\n\nlast"
    doc = ";FFMETADATA1\ncomment=" + ff.escape_ffmetadata(text) + "\ntitle=t\n[STREAM]\ncomment=no\n"
    assert parse_ffmetadata(doc) == {"comment": text, "title": "t"}


def test_failure_midway_kills_encoder_and_leaves_nothing(tmp_path, monkeypatch):
    real = ff.frame_bytes

    def flaky(frames, w, h):
        for i, data in enumerate(real(frames, w, h)):
            if i == 3:
                raise RuntimeError("encoder crashed (simulated)")
            yield data

    monkeypatch.setattr(ff, "frame_bytes", flaky)
    for fmt, writer in (("mp4", ff.write_mp4), ("webm", ff.write_webm)):
        with pytest.raises(RuntimeError, match="simulated"):
            writer(moving_gradient(8), tmp_path / f"x.{fmt}", VideoOptions(infotext="t"))
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_error_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(ff, "_codec_args", lambda fmt, options: ["-c:v", "no-such-codec", "-f", "mp4"])
    with pytest.raises(RuntimeError, match="ffmpeg \\(mp4\\) failed"):
        ff.write_mp4(moving_gradient(2), tmp_path / "x.mp4", VideoOptions())
    assert list(tmp_path.iterdir()) == []


def test_missing_ffmpeg_refuses_mp4_and_webm_naming_the_format(monkeypatch):
    from motion_module.errors import ParamError
    from motion_module.video import ffmpeg as ff

    ff.check_formats(["GIF", "MP4", "WEBM"])  # the wheel's binary is there
    monkeypatch.setattr(ff, "ffmpeg_exe", lambda: (_ for _ in ()).throw(RuntimeError("no imageio-ffmpeg")))
    ff.check_formats(["GIF", "PNG", "TXT", "Frame"])  # nothing needs it
    with pytest.raises(ParamError) as e:
        ff.check_formats(["GIF", "MP4", "WEBM"])
    assert e.value.field == "format" and "MP4 and WEBM" in str(e.value) and "no imageio-ffmpeg" in str(e.value)
    monkeypatch.setattr(ff, "ffmpeg_exe", lambda: "/nonexistent/ffmpeg")
    with pytest.raises(ParamError, match="binary '/nonexistent/ffmpeg' is missing"):
        ff.check_formats(["WEBM"])

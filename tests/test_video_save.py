"""save_video end to end: every format, names, collisions, failures, S3."""

import datetime as dt
import logging
import os
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image


from media import read_comment

from motion_module.video import VideoOptions, save_video
from motion_module.video import ffmpeg as ff
from motion_module.video import gif as gif_mod
import video_frames

ROOT = Path(__file__).resolve().parents[1]

DAY = dt.date(2024, 3, 5)
INFOTEXT = "a dog running\nNegative prompt: bad\nSteps: 20, Seed: 42, AnimateDiff: \"fps: 8, loop_number: 0\""
ALL = ["GIF", "MP4", "WEBP", "WEBM", "PNG", "TXT"]


def moving_gradient(n, w=40, h=30):
    return video_frames.moving_gradient(n, w, h)


def day_dir(root):
    return Path(root) / "AnimateDiff" / "2024-03-05"


def listing(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def test_all_formats(tmp_path):
    src = moving_gradient(8)
    res = save_video(src, ALL + ["Frame"], VideoOptions(fps=8, infotext=INFOTEXT), tmp_path, 42, "req-1", day=DAY)
    assert res.errors == {}
    folder = day_dir(tmp_path)
    assert res.folder == folder and res.stem == "00000-42-req-1"
    assert listing(folder) == sorted(
        ["00000-42-req-1.gif", "00000-42-req-1.mp4", "00000-42-req-1.webp", "00000-42-req-1.webm",
         "00000-42-req-1", "00000-42-req-1.txt"]
    )
    assert [p.suffix for p in res.video_paths] == [".gif", ".mp4", ".webp", ".webm"]
    assert res.paths["PNG"] == folder / "00000-42-req-1"
    assert [p.name for p in res.png_frames] == [f"{i:05}.png" for i in range(8)]
    assert (folder / "00000-42-req-1.txt").read_text(encoding="utf-8") == INFOTEXT
    with Image.open(res.paths["GIF"]) as im:
        assert im.n_frames == 8 and im.info["comment"].decode() == INFOTEXT
    with Image.open(res.png_frames[3]) as im:
        assert im.text["parameters"] == INFOTEXT
    assert read_comment(res.paths["MP4"]) == INFOTEXT
    gen = imageio_ffmpeg.read_frames(str(res.paths["WEBM"]))
    assert next(gen)["size"] == (40, 30) and sum(1 for _ in gen) == 8


def test_sequence_moves_on_and_nothing_is_overwritten(tmp_path):
    folder = day_dir(tmp_path)
    folder.mkdir(parents=True)
    pre = {"00000-42.gif": b"old gif", "00003-42.txt": b"old txt", "00001-7.mp4": b"old mp4"}
    for name, data in pre.items():
        (folder / name).write_bytes(data)
    (folder / "00004-42").mkdir()
    res = save_video(moving_gradient(2), ["GIF", "TXT", "PNG"], VideoOptions(infotext="new"), tmp_path, 42, day=DAY)
    assert res.stem == "00005-42" and res.errors == {}
    for name, data in pre.items():
        assert (folder / name).read_bytes() == data
    assert list((folder / "00004-42").iterdir()) == []


def test_consecutive_calls_same_second_never_collide(tmp_path):
    stems = []
    for _ in range(3):
        res = save_video(moving_gradient(2), ["GIF", "TXT"], VideoOptions(infotext="x"), tmp_path, 42, day=DAY)
        assert res.errors == {}
        stems.append(res.stem)
    assert stems == ["00000-42", "00001-42", "00002-42"]
    assert len(listing(day_dir(tmp_path))) == 6


def test_request_id_cannot_escape(tmp_path):
    for rid in ("../../etc/passwd", "a/b", "..", ""):
        res = save_video(moving_gradient(2), ["GIF", "PNG"], VideoOptions(), tmp_path / "out", 1, rid, day=DAY)
        assert res.errors == {}
        folder = day_dir(tmp_path / "out").resolve()
        for p in res.video_paths + res.png_frames:
            assert folder in p.resolve().parents
    names = listing(day_dir(tmp_path / "out"))
    assert "00000-1-etc_passwd.gif" in names and "00001-1-a_b.gif" in names
    assert "00002-1.gif" in names and "00003-1.gif" in names
    assert listing(tmp_path) == ["out"]


def test_failing_writer_does_not_stop_others(tmp_path, monkeypatch, caplog):
    real = ff.frame_bytes

    def flaky(frames, w, h):
        for i, data in enumerate(real(frames, w, h)):
            if i == 2:
                raise RuntimeError("encoder died (simulated)")
            yield data

    monkeypatch.setattr(ff, "frame_bytes", flaky)
    with caplog.at_level(logging.ERROR):
        res = save_video(moving_gradient(6), ["MP4", "GIF", "WEBP", "TXT", "PNG"],
                         VideoOptions(infotext="t"), tmp_path, 9, day=DAY)
    assert set(res.errors) == {"MP4"} and "simulated" in res.errors["MP4"]
    assert isinstance(res.causes["MP4"], RuntimeError)
    assert "simulated" not in caplog.text  # the caller reports all failures once (outputs.write)
    folder = day_dir(tmp_path)
    names = listing(folder)
    assert names == ["00000-9", "00000-9.gif", "00000-9.txt", "00000-9.webp"]
    assert not any(n.startswith(".") or n.endswith(".partial") for n in os.listdir(folder))
    assert [p.suffix for p in res.video_paths] == [".gif", ".webp"]


def test_failing_gif_encoder_leaves_no_partial(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError("no space left (simulated)")

    monkeypatch.setattr(gif_mod, "apply_palette", boom)
    res = save_video(moving_gradient(3), ["GIF", "TXT"], VideoOptions(gif_palette=True), tmp_path, 1, day=DAY)
    assert set(res.errors) == {"GIF"}
    assert listing(day_dir(tmp_path)) == ["00000-1.txt"]


def test_frame_flag_is_not_a_file_and_order_is_fixed(tmp_path):
    res = save_video(moving_gradient(2), ["TXT", "Frame", "GIF"], VideoOptions(), tmp_path, 3, day=DAY)
    assert res.errors == {} and list(res.paths) == ["GIF", "TXT"]


def test_odd_size_single_frame_and_long_video(tmp_path):
    res = save_video(moving_gradient(1, 63, 47), ALL, VideoOptions(infotext="one"), tmp_path, 1, day=DAY)
    assert res.errors == {}
    gen = imageio_ffmpeg.read_frames(str(res.paths["MP4"]))
    assert next(gen)["size"] == (64, 48) and sum(1 for _ in gen) == 1
    res = save_video(moving_gradient(200, 16, 12), ["GIF", "MP4", "WEBP", "WEBM"], VideoOptions(fps=24), tmp_path, 2, day=DAY)
    assert res.errors == {}
    for p in res.video_paths:
        if p.suffix in (".gif", ".webp"):
            with Image.open(p) as im:
                assert im.n_frames == 200
        else:
            assert imageio_ffmpeg.count_frames_and_secs(str(p))[0] == 200


def test_frames_must_match(tmp_path):
    with pytest.raises(ValueError, match="size"):
        save_video([Image.new("RGB", (4, 4)), Image.new("RGB", (4, 5))], ["GIF"], VideoOptions(), tmp_path, 1)
    with pytest.raises(ValueError, match="at least one frame"):
        save_video([], ["GIF"], VideoOptions(), tmp_path, 1)


def test_s3_upload_of_each_video(tmp_path, monkeypatch):
    moto = pytest.importorskip("moto")
    endpoint = "http://127.0.0.1:9001"
    monkeypatch.setenv("MOTO_S3_CUSTOM_ENDPOINTS", endpoint)
    from motion_module.video.s3 import make_client

    opts = VideoOptions(infotext="s3", s3_enable=True, s3_access_key="AK", s3_secret_key="SK-secret", s3_bucket="vids")
    with moto.mock_aws():
        res = save_video(moving_gradient(2), ["GIF", "MP4", "TXT"], opts, tmp_path, 5, day=DAY)
        keys = sorted(o["Key"] for o in make_client(opts).list_objects_v2(Bucket="vids").get("Contents", []))
    assert res.errors == {}
    assert [r.ok for r in res.s3] == [True, True], [r.error for r in res.s3]
    assert keys == ["2024-03-05/00000-5.gif", "2024-03-05/00000-5.mp4"]
    assert all(p.exists() for p in res.video_paths)


def test_package_never_imports_the_webui():
    code = (
        "import sys, motion_module.video as v\n"
        "import motion_module.video.gif, motion_module.video.ffmpeg, motion_module.video.webp\n"
        "import motion_module.video.png, motion_module.video.s3, motion_module.video.interpolation\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('modules', 'launch', 'gradio', 'webui')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    for path in (ROOT / "motion_module" / "video").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for banned in ("import modules", "from modules", "import launch", "import gradio", "from gradio"):
            assert banned not in text, f"{path.name}: {banned}"

"""File names, sequence numbers, atomic commits and option validation."""

import datetime as dt
import os
import threading

import pytest


from motion_module.video import atomic, naming
from motion_module.video.atomic import atomic_output
from motion_module.video.naming import (
    allocate_name,
    make_stem,
    next_sequence_number,
    sanitize_request_id,
    video_folder,
)
from motion_module.video.options import VideoOptions


# --- request id -----------------------------------------------------------

@pytest.mark.parametrize(
    "raw,expected",
    [
        ("../../etc/passwd", "etc_passwd"),
        ("a/b", "a_b"),
        ("a\\b", "a_b"),
        ("..", ""),
        (".", ""),
        ("", ""),
        (None, ""),
        (".hidden", "hidden"),
        ("ok-id_1.2", "ok-id_1.2"),
        ("  spaced out  ", "spaced_out"),
        ("C:\\Windows\\..\\x", "C_Windows_.._x"),
        ("ünï/cödé", "n_c_d"),
        ("-rf", "rf"),
        (12345, "12345"),
        ("a\x00b\nc", "a_b_c"),
    ],
)
def test_sanitize_request_id(raw, expected):
    assert sanitize_request_id(raw) == expected


def test_sanitize_request_id_bounds_length_and_charset():
    out = sanitize_request_id("x" * 500)
    assert out == "x" * 64
    out = sanitize_request_id("a" * 63 + "/" + "b" * 10)
    assert len(out) <= 64 and not out.endswith(("_", ".", "-"))
    for raw in ("../..", "/abs/path", "..\\..\\", "a/../../b", "\u202e"):
        s = sanitize_request_id(raw)
        assert set(s) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        assert not s.startswith(".")
        assert os.sep not in s and "/" not in s


def test_stem_with_and_without_request_id():
    assert make_stem(7, 1234) == "00007-1234"
    assert make_stem(7, 1234, "../../etc/passwd") == "00007-1234-etc_passwd"
    assert make_stem(7, 1234, "..") == "00007-1234"
    assert make_stem(123456, 1) == "123456-1"
    with pytest.raises(ValueError, match="seed"):
        make_stem(1, "abc")


def test_video_folder_layout(tmp_path):
    assert video_folder(tmp_path, dt.date(2024, 2, 9)) == tmp_path / "AnimateDiff" / "2024-02-09"


# --- sequence numbers and collisions ---------------------------------------

def test_next_sequence_number_like_webui(tmp_path):
    assert next_sequence_number(tmp_path / "missing") == 0
    assert next_sequence_number(tmp_path) == 0
    for name in ("00000-5.gif", "00007-99.mp4", "00003-1", "notes.txt", ".00042-x.gif.1-ab.partial", "12abc.png"):
        p = tmp_path / name
        p.mkdir() if "." not in name else p.write_bytes(b"x")
    assert next_sequence_number(tmp_path) == 8


def test_allocate_moves_on_when_targets_exist(tmp_path, monkeypatch):
    (tmp_path / "00000-42.gif").write_bytes(b"a")
    (tmp_path / "00001-42.mp4").write_bytes(b"b")
    (tmp_path / "00002-42").mkdir()
    # Pretend the scan missed them (e.g. another process just created them):
    # the existence check must still move seq on.
    monkeypatch.setattr(naming, "next_sequence_number", lambda folder: 0)
    monkeypatch.setattr(naming, "existing_sequence_numbers", lambda folder: [])
    name = allocate_name(tmp_path, 42, extensions=["gif", "mp4"])
    assert name.stem == "00003-42"
    assert (tmp_path / "00000-42.gif").read_bytes() == b"a"


def test_consecutive_allocations_never_collide_even_without_files(tmp_path):
    # Two calls in the same instant, before either writes anything.
    a = allocate_name(tmp_path, 1)
    b = allocate_name(tmp_path, 1)
    assert a.seq != b.seq and a.stem != b.stem


def test_concurrent_allocations_are_unique(tmp_path):
    results, lock = [], threading.Lock()

    def work():
        n = allocate_name(tmp_path, 5)
        with lock:
            results.append(n.seq)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(16))


# --- atomic writes ----------------------------------------------------------

def test_atomic_output_success_and_cleanup(tmp_path):
    final = tmp_path / "x.bin"
    with atomic_output(final) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.name.endswith(".partial")
        tmp.write_bytes(b"data")
        assert not final.exists()
    assert final.read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_atomic_output_failure_removes_temp(tmp_path):
    with pytest.raises(RuntimeError, match="encoder crashed"):
        with atomic_output(tmp_path / "x.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("encoder crashed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_refuses_to_overwrite_even_if_created_meanwhile(tmp_path):
    final = tmp_path / "x.bin"
    with pytest.raises(FileExistsError):
        with atomic_output(final) as tmp:
            tmp.write_bytes(b"new")
            final.write_bytes(b"someone else's")  # appears while we encode
    assert final.read_bytes() == b"someone else's"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_commit_without_hard_links(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(1, "hard links not supported")

    monkeypatch.setattr(atomic.os, "link", no_link)
    with atomic_output(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"1")
    assert (tmp_path / "a.bin").read_bytes() == b"1"
    (tmp_path / "b.bin").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        with atomic_output(tmp_path / "c.bin") as tmp:
            tmp.write_bytes(b"2")
            (tmp_path / "c.bin").write_bytes(b"keep")
    assert (tmp_path / "c.bin").read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin", "c.bin"]


# --- options ----------------------------------------------------------------

def test_defaults_match_webui_settings():
    o = VideoOptions()
    assert (o.fps, o.loop_number, o.mp4_crf, o.mp4_preset, o.mp4_tune) == (8, 0, 23, "", "")
    assert (o.webp_quality, o.webp_lossless, o.gif_palette, o.gif_gifsicle, o.s3_enable) == (80, False, False, False, False)


@pytest.mark.parametrize(
    "key,value,allowed",
    [
        ("animatediff_mp4_crf", 52, "between 0 and 51"),
        ("animatediff_mp4_crf", -1, "between 0 and 51"),
        ("animatediff_mp4_crf", True, "between 0 and 51"),
        ("animatediff_mp4_preset", "turbo", "veryslow"),
        ("animatediff_mp4_tune", "anime", "animation"),
        ("animatediff_webp_quality", 0, "between 1 and 100"),
        ("animatediff_webp_quality", 101, "between 1 and 100"),
        ("animatediff_webp_lossless", "yes", "true or false"),
        ("animatediff_optimize_gif_palette", "no", "true or false"),
    ],
)
def test_invalid_settings_name_the_key(key, value, allowed):
    with pytest.raises(ValueError) as e:
        VideoOptions.from_settings({key: value})
    assert f"setting {key}=" in str(e.value)
    assert allowed in str(e.value)


def test_s3_fields_checked_only_when_enabled():
    VideoOptions.from_settings({"animatediff_s3_port": "junk", "animatediff_s3_host": "http://x/"})  # disabled
    with pytest.raises(ValueError, match="s3_port"):
        VideoOptions.from_settings({"animatediff_s3_enable": True, "animatediff_s3_port": "junk"})
    with pytest.raises(ValueError, match="s3_host"):
        VideoOptions.from_settings({"animatediff_s3_enable": True, "animatediff_s3_host": "http://minio:9000"})
    o = VideoOptions.from_settings({"animatediff_s3_enable": True, "animatediff_s3_port": "9000"})
    assert (o.s3_host, o.s3_port) == ("127.0.0.1", 9000)
    assert VideoOptions.from_settings({"animatediff_s3_enable": True}).s3_port == 9001


def test_numeric_strings_and_fractional_fps():
    o = VideoOptions.from_settings({"animatediff_mp4_crf": "18", "animatediff_webp_quality": 90.0}, fps=29.97)
    assert o.mp4_crf == 18 and o.webp_quality == 90
    assert str(o.fps_fraction) == "2997/100"


def test_secrets_not_in_repr():
    o = VideoOptions(s3_access_key="AKIA-visible?", s3_secret_key="s3cr3t-value")
    assert "s3cr3t-value" not in repr(o) and "AKIA-visible?" not in repr(o)


def test_from_settings_reads_webui_keys():
    settings = {
        "animatediff_optimize_gif_palette": True,
        "animatediff_optimize_gif_gifsicle": False,
        "animatediff_mp4_crf": 18,
        "animatediff_mp4_preset": "slow",
        "animatediff_mp4_tune": "animation",
        "animatediff_webp_quality": 90,
        "animatediff_webp_lossless": True,
        "animatediff_s3_enable": False,
        "animatediff_s3_host": None,
        "animatediff_s3_port": None,
        "animatediff_s3_access_key": None,
        "animatediff_s3_secret_key": None,
        "animatediff_s3_storge_bucket": "bkt",
    }
    o = VideoOptions.from_settings(settings, fps=12, loop_number=2, infotext="p")
    assert (o.gif_palette, o.mp4_crf, o.mp4_preset, o.mp4_tune) == (True, 18, "slow", "animation")
    assert (o.webp_quality, o.webp_lossless, o.s3_bucket, o.s3_port) == (90, True, "bkt", 9001)
    assert (o.fps, o.loop_number, o.infotext) == (12, 2, "p")

    class Opts:  # attribute-style, like shared.opts
        animatediff_mp4_crf = 30

    assert VideoOptions.from_settings(Opts()).mp4_crf == 30
    with pytest.raises(TypeError, match="bogus"):
        VideoOptions.from_settings({}, bogus=1)

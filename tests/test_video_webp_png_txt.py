"""Animated WEBP, PNG frames and TXT: decoded back with Pillow / plain reads."""


import numpy as np
import pytest
from PIL import ExifTags, Image, features


from motion_module.video import png as png_mod
from motion_module.video.options import VideoOptions
from motion_module.video.png import write_png_frames
from motion_module.video.txt import write_txt
from motion_module.video.webp import read_infotext, write_webp
from video_frames import mae, moving_gradient

INFOTEXT = "1girl\nNegative prompt: ünïcödé, 中文, emoji \U0001f600\nSteps: 20"
needs_webp = pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")


def read_webp(path):
    frames, durations = [], []
    with Image.open(path) as im:
        info = dict(im.info)
        exif_comment = im.getexif().get_ifd(ExifTags.IFD.Exif).get(0x9286)
        for i in range(im.n_frames):
            im.seek(i)
            im.load()  # Pillow fills in the duration when the frame is decoded
            durations.append(im.info.get("duration"))
            frames.append(im.convert("RGB"))
    return frames, durations, info, exif_comment


# --- WEBP -----------------------------------------------------------------

@needs_webp
@pytest.mark.parametrize("fps,loop", [(8, 0), (3, 2)])
def test_webp_roundtrip(tmp_path, fps, loop):
    src = moving_gradient(12)
    path = tmp_path / "a.webp"
    write_webp(src, path, VideoOptions(fps=fps, loop_number=loop, infotext=INFOTEXT))
    frames, durations, info, raw = read_webp(path)
    assert len(frames) == 12 and all(f.size == (48, 32) for f in frames)
    assert sum(durations) == round(12 * 1000 / fps)
    assert all(abs(d - 1000 / fps) <= 1 for d in durations)
    assert info["loop"] == loop
    # EXIF UserComment, decoded by hand per the EXIF spec (independent of
    # the writer's helper): "UNICODE\0" + UTF-16 in the TIFF byte order.
    assert raw[:8] == b"UNICODE\x00"
    assert raw[8:].decode("utf-16-be") == INFOTEXT
    assert info["exif"][:2] == b"MM"
    with Image.open(path) as im:
        assert read_infotext(im) == INFOTEXT
    for got, want in zip(frames, src):
        assert mae(got, want) < 6
    assert [p.name for p in tmp_path.iterdir()] == ["a.webp"]


@needs_webp
def test_webp_lossless_is_exact(tmp_path):
    src = moving_gradient(4, 63, 47)
    path = tmp_path / "l.webp"
    write_webp(src, path, VideoOptions(webp_lossless=True))
    frames, _, _, _ = read_webp(path)
    assert len(frames) == 4
    for got, want in zip(frames, src):
        assert np.array_equal(np.asarray(got), np.asarray(want))


@needs_webp
def test_webp_quality_changes_size(tmp_path):
    src = moving_gradient(6, 64, 64)
    write_webp(src, tmp_path / "lo.webp", VideoOptions(webp_quality=5))
    write_webp(src, tmp_path / "hi.webp", VideoOptions(webp_quality=100))
    assert (tmp_path / "lo.webp").stat().st_size < (tmp_path / "hi.webp").stat().st_size
    lo, _, _, _ = read_webp(tmp_path / "lo.webp")
    hi, _, _, _ = read_webp(tmp_path / "hi.webp")
    assert mae(hi[2], src[2]) < mae(lo[2], src[2])


@needs_webp
def test_webp_single_frame_and_200_frames(tmp_path):
    one = moving_gradient(1, 63, 47)
    write_webp(one, tmp_path / "one.webp", VideoOptions(infotext="x"))
    frames, _, _, raw = read_webp(tmp_path / "one.webp")
    assert len(frames) == 1 and frames[0].size == (63, 47)
    assert raw[8:].decode("utf-16-be") == "x"
    long = moving_gradient(200, 24, 16)
    write_webp(long, tmp_path / "long.webp", VideoOptions(fps=8))
    frames, durations, _, _ = read_webp(tmp_path / "long.webp")
    assert len(frames) == 200 and sum(durations) == 25000


@needs_webp
def test_webp_failure_leaves_nothing(tmp_path, monkeypatch):
    from PIL import WebPImagePlugin

    def boom(*a, **k):
        raise OSError("encoder failed (simulated)")

    monkeypatch.setattr(WebPImagePlugin, "_save_all", boom)
    monkeypatch.setitem(Image.SAVE_ALL, "WEBP", boom)
    with pytest.raises(OSError, match="simulated"):
        write_webp(moving_gradient(3), tmp_path / "x.webp", VideoOptions())
    assert list(tmp_path.iterdir()) == []


# --- PNG ------------------------------------------------------------------

def test_png_frames_carry_parameters(tmp_path):
    src = moving_gradient(5, 63, 47)
    paths = write_png_frames(src, tmp_path / "frames", INFOTEXT)
    assert [p.name for p in paths] == [f"{i:05}.png" for i in range(5)]
    for p, want in zip(paths, src):
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size == (63, 47)
            assert im.text["parameters"] == INFOTEXT
            assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(want))


def test_png_latin1_text_is_plain_text_chunk(tmp_path):
    paths = write_png_frames(moving_gradient(3), tmp_path, "Seed: 100")
    with Image.open(paths[2]) as im:
        assert im.text["parameters"] == "Seed: 100"
    assert b"tEXtparameters" in paths[0].read_bytes()  # plain tEXt for Latin-1


def test_png_failure_midway_removes_written_frames(tmp_path, monkeypatch):
    real = png_mod.atomic_output
    calls = {"n": 0}

    def flaky(target):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return real(target)

    monkeypatch.setattr(png_mod, "atomic_output", flaky)
    with pytest.raises(OSError, match="simulated"):
        write_png_frames(moving_gradient(5), tmp_path / "frames", "x")
    assert not (tmp_path / "frames").exists()
    assert list(tmp_path.iterdir()) == []


# --- TXT ------------------------------------------------------------------

def test_txt(tmp_path):
    path = write_txt(INFOTEXT, tmp_path / "00001-5.txt")
    assert path.read_text(encoding="utf-8") == INFOTEXT
    with pytest.raises(FileExistsError):
        write_txt("other", path)
    assert path.read_text(encoding="utf-8") == INFOTEXT
    assert [p.name for p in tmp_path.iterdir()] == ["00001-5.txt"]

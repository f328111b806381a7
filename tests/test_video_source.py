"""Video-to-video sources: videos decoded to frames, frame folders checked,
and paths kept inside the allowed roots. Videos are made here with
imageio-ffmpeg; frames are told apart by a colour that encodes their index."""

import os
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from motion_module.errors import ParamError
from motion_module.video.source import extract, inside_roots, list_frames, masks_for, probe_video

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def _frame(i, width, height):
    """A frame whose left half is bright and right half dark, tinted by i."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, : width // 2] = 220
    frame[..., 1] = (i * 37) % 200 + 20
    return frame


def _write_video(path, frames, width, height, fps=8):
    # yuv444 keeps odd sizes (yuv420 needs even ones); libx264 reads them fine.
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, codec="libx264",
                                         pix_fmt_out="yuv444p", macro_block_size=1,
                                         output_params=["-crf", "0"])
    writer.send(None)
    for i in range(frames):
        writer.send(_frame(i, width, height).tobytes())
    writer.close()
    return str(path)


def _green(path):
    return int(np.asarray(Image.open(path).convert("RGB"))[..., 1].mean().round())


def _is_frame_sequence(greens, start=0):
    """Each green within 3 of frame start+i's (neighbours differ by 37): YUV rounding aside, frame i."""
    return all(abs(g - ((start + i) * 37) % 200 - 20) <= 3 for i, g in enumerate(greens))


@pytest.mark.parametrize("size", [(64, 48), (37, 29)])
def test_every_frame_is_decoded_in_order_at_its_size(tmp_path, size):
    video = _write_video(tmp_path / "in.mp4", 12, *size, fps=12)
    frames = extract(video, parent=str(tmp_path / "work"))
    try:
        assert len(frames) == 12 and frames.size == size and frames.temporary
        assert abs(frames.fps - 12) < 0.01
        assert sorted(os.listdir(frames.folder)) == [os.path.basename(f) for f in frames.files]
        assert _is_frame_sequence([_green(f) for f in frames.files])
        assert Image.open(frames.files[0]).size == size
    finally:
        frames.remove()
    assert not os.path.exists(frames.folder)
    assert probe_video(video)[0] == 12


def test_limit_stops_decoding_early(tmp_path):
    video = _write_video(tmp_path / "in.mp4", 10, 32, 32)
    frames = extract(video, parent=str(tmp_path), limit=4)
    assert len(frames) == 4
    frames.remove()


def test_a_rotated_phone_video_is_decoded_upright(tmp_path):
    plain = _write_video(tmp_path / "plain.mp4", 3, 64, 32)
    rotated = str(tmp_path / "rotated.mp4")
    subprocess.run([FFMPEG, "-v", "error", "-display_rotation", "90", "-i", plain, "-c", "copy", rotated],
                   check=True)
    frames = extract(rotated, parent=str(tmp_path))
    assert frames.size == (32, 64)  # portrait, as a player shows it
    image = np.asarray(Image.open(frames.files[0]).convert("L"), dtype=np.float32)
    # The bright left half of the landscape frame is now the top or bottom half.
    top, bottom = image[:32].mean(), image[32:].mean()
    assert abs(top - bottom) > 80
    frames.remove()


def test_variable_frame_rate_keeps_every_frame_and_gives_the_mean_rate(tmp_path):
    folder = tmp_path / "vfr"
    folder.mkdir()
    durations = [0.05, 0.05, 0.2, 0.2, 0.1, 0.1]
    for i in range(len(durations)):
        Image.fromarray(_frame(i, 32, 32)).save(folder / f"{i}.png")
    concat = tmp_path / "list.txt"
    concat.write_text("".join(f"file '{folder / f'{i}.png'}'\nduration {d}\n" for i, d in enumerate(durations))
                      + f"file '{folder / '5.png'}'\n")
    video = str(tmp_path / "vfr.mkv")
    subprocess.run([FFMPEG, "-v", "error", "-f", "concat", "-safe", "0", "-i", str(concat), "-fps_mode", "vfr",
                    "-enc_time_base", "1/1000",
                    "-c:v", "ffv1", video], check=True)
    frames = extract(video, parent=str(tmp_path))
    # The concat list shows its last file twice (once more after its duration).
    greens = [_green(f) for f in frames.files]
    assert len(frames) == 7 and _is_frame_sequence(greens[:6]) and greens[6] == greens[5]
    # The mean rate (6 frames over 0.7 s, plus how the muxer times the repeat), not a nominal rate.
    assert 8.0 < frames.fps < 8.8
    frames.remove()


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_an_unreadable_video_is_refused_and_leaves_no_folder(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    work = tmp_path / "work"
    with pytest.raises(ParamError) as e:
        extract(str(bad), parent=str(work))
    assert e.value.field == "video_source" and "bad.mp4" in str(e.value)
    assert not work.exists() or not os.listdir(work)
    with pytest.raises(ParamError):
        probe_video(str(bad))


def test_a_missing_video_is_refused(tmp_path):
    with pytest.raises(ParamError, match="not a file"):
        extract(str(tmp_path / "nope.mp4"))


def _folder(tmp_path, sizes, names=None):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, size in enumerate(sizes):
        Image.new("RGB", size, (i, 0, 0)).save(folder / (names[i] if names else f"f{i}.png"))
    return str(folder)


def test_a_folder_lists_its_frames_in_natural_order(tmp_path):
    folder = _folder(tmp_path, [(16, 16)] * 3, ["f10.png", "f2.png", "f1.png"])
    (tmp_path / "frames" / ".DS_Store").write_bytes(b"x")
    frames = list_frames(folder, "video_path")
    assert [os.path.basename(f) for f in frames.files] == ["f1.png", "f2.png", "f10.png"]
    assert frames.size == (16, 16) and not frames.temporary
    frames.remove()  # not ours: stays
    assert os.path.isdir(folder)


@pytest.mark.parametrize("case, message", [
    ("missing", "not a folder"),
    ("empty", "holds no frames"),
    ("mixed", "mixes image sizes"),
    ("text", "not an image"),
    ("broken", "cannot be read as an image"),
])
def test_bad_folders_are_refused_naming_the_field(tmp_path, case, message):
    if case == "missing":
        folder = str(tmp_path / "nope")
    elif case == "empty":
        folder = str(tmp_path / "empty")
        os.mkdir(folder)
    elif case == "mixed":
        folder = _folder(tmp_path, [(16, 16), (16, 8)])
    elif case == "text":
        folder = _folder(tmp_path, [(16, 16)])
        (tmp_path / "frames" / "notes.txt").write_text("hi")
    else:
        folder = _folder(tmp_path, [(16, 16)])
        (tmp_path / "frames" / "f9.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ParamError, match=message) as e:
        list_frames(folder, "video_path")
    assert e.value.field == "video_path"


def test_roots_keep_paths_inside_and_resolve_symlinks_and_dots(tmp_path):
    root = tmp_path / "allowed"
    (root / "clips").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    os.symlink(outside, root / "link")
    assert inside_roots(str(root / "clips"), [str(root)])
    assert inside_roots(str(root), [str(root)])
    assert not inside_roots(str(root / ".." / "secret"), [str(root)])
    assert not inside_roots(str(root / "link"), [str(root)])
    assert not inside_roots(str(tmp_path / "allowedx"), [str(root)])  # a prefix is not a parent
    assert inside_roots("/anything", [])
    with pytest.raises(ParamError, match="outside the folders") as e:
        list_frames(str(root / "link"), "video_path", roots=[str(root)])
    assert e.value.field == "video_path"


def test_masks_pair_with_frames_by_name_then_position_or_one_for_all(tmp_path):
    frames = list_frames(_folder(tmp_path, [(16, 16)] * 3), "input")
    masks_dir = tmp_path / "masks"
    masks_dir.mkdir()
    for name in ("f2.png", "f0.png", "f1.png"):
        Image.new("L", (16, 16)).save(masks_dir / name)
    by_name = masks_for(frames, list_frames(str(masks_dir), "mask"), "mask")
    assert [os.path.basename(m) for m in by_name] == ["f0.png", "f1.png", "f2.png"]
    (masks_dir / "f2.png").rename(masks_dir / "z.png")  # names no longer match: by position
    assert [os.path.basename(m) for m in masks_for(frames, list_frames(str(masks_dir), "mask"), "mask")] == \
        ["f0.png", "f1.png", "z.png"]
    (masks_dir / "z.png").unlink()
    (masks_dir / "f1.png").unlink()
    one = masks_for(frames, list_frames(str(masks_dir), "mask"), "mask")
    assert [os.path.basename(m) for m in one] == ["f0.png"] * 3


def test_too_few_unmatched_masks_are_refused_naming_the_field(tmp_path):
    frames = list_frames(_folder(tmp_path, [(16, 16)] * 3), "input")
    masks_dir = tmp_path / "masks"
    masks_dir.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("L", (16, 16)).save(masks_dir / name)
    with pytest.raises(ParamError, match="2 masks for 3 images") as e:
        masks_for(frames, list_frames(str(masks_dir), "inpaint mask directory"), "inpaint mask directory")
    assert e.value.field == "inpaint mask directory"

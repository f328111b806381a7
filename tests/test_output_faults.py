"""Writing when the disk is full or the folder is not writable: every failed
format is reported with its cause, nothing half-written stays, the formats
that can still be written are (PNG frames after a failed GIF), and the error
the user gets says so (HTTP 507 for a full disk)."""

import errno
import os
from pathlib import Path

from PIL import Image

import video_frames
from small_fs import fill, free_bytes, tmpfs

from motion_module.video import VideoOptions, save_video
from motion_module.video.failures import OutputError, output_error

FRAMES = 6


def frames():
    return video_frames.moving_gradient(FRAMES, 48, 40)


def everything(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


def no_partials(root):
    return not [p for p in Path(root).rglob("*") if p.name.startswith(".") or p.name.endswith(".partial")]


def test_disk_full_mid_gif_leaves_no_partial_and_png_frames_are_still_written(tmp_path, monkeypatch):
    """The GIF encoder has written part of the file when the disk fills; the
    temporary file goes, the space comes back and the PNG frames are written."""
    real_save = Image.Image.save

    def save(self, fp, *args, **kwargs):
        if kwargs.get("format") == "GIF":
            with open(fp, "wb") as f:
                f.write(b"GIF89a" + b"\0" * 4096)  # the part that fit
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fp))
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    saved = save_video(frames(), ["GIF", "PNG", "TXT"], VideoOptions(infotext="t"), tmp_path, 5)
    assert set(saved.errors) == {"GIF"} and "No space left" in saved.errors["GIF"]
    assert len(saved.png_frames) == FRAMES and all(p.is_file() for p in saved.png_frames)
    assert no_partials(tmp_path) and not list(tmp_path.rglob("*.gif"))
    error = output_error([saved])
    assert isinstance(error, OutputError) and error.status_code == 507
    assert "GIF into" in str(error) and "No space left" in str(error)
    assert str(saved.paths["PNG"]) in str(error) and str(saved.paths["TXT"]) in str(error)


def test_folder_that_cannot_be_made_fails_every_format_without_raising(tmp_path):
    blocker = tmp_path / "outputs"
    blocker.write_text("a file where the output folder should be")
    saved = save_video(frames(), ["GIF", "MP4", "PNG"], VideoOptions(), blocker, 1)
    assert set(saved.errors) == {"GIF", "MP4", "PNG"} and not saved.paths
    error = output_error([saved], frames_folder=None)
    assert error.status_code == 500 and str(blocker) in str(error) and "GIF" in str(error)
    assert everything(tmp_path) == ["outputs"]


def test_nothing_failed_is_no_error(tmp_path):
    saved = save_video(frames(), ["GIF"], VideoOptions(), tmp_path, 1)
    assert saved.ok and output_error([saved]) is None


def test_webui_saved_frames_are_named(tmp_path):
    blocker = tmp_path / "x"
    blocker.write_text("")
    error = output_error([save_video(frames(), ["GIF"], VideoOptions(), blocker, 1)], frames_folder="/out/samples")
    assert "The frames are saved as PNG in /out/samples" in str(error)


def test_real_full_disk(tmp_path):
    """A real tmpfs filled up: ENOSPC from the kernel in the middle of the GIF."""
    with tmpfs(tmp_path / "small", 256) as root:
        saved = save_video(frames(), ["GIF"], VideoOptions(), root, 1)  # needs some space for the folders
        size = saved.paths["GIF"].stat().st_size
        fill(root, leave_bytes=size // 2)
        assert 0 < free_bytes(root) < size
        saved = save_video(frames(), ["GIF", "TXT"], VideoOptions(infotext="t"), root, 2)
        assert "GIF" in saved.errors and saved.causes["GIF"].errno == errno.ENOSPC
        assert no_partials(root) and len(list(Path(root).rglob("*.gif"))) == 1  # only the first one
        assert output_error([saved]).status_code == 507


def test_real_read_only_folder(tmp_path):
    with tmpfs(tmp_path / "ro", 64, readonly=True) as root:
        saved = save_video(frames(), ["GIF", "PNG"], VideoOptions(), root, 1)
        assert set(saved.errors) == {"GIF", "PNG"}
        assert all(c.errno == errno.EROFS for c in saved.causes.values())
        error = output_error([saved])
        assert error.status_code == 500 and "Read-only file system" in str(error)
        assert everything(root) == []

"""Real small file systems for the disk-full and read-only tests: a tmpfs
mounted for the test (needs root with CAP_SYS_ADMIN; tests skip otherwise)."""

import contextlib
import os
import shutil
import subprocess

import pytest


@contextlib.contextmanager
def tmpfs(folder, size_kib, readonly=False):
    """Mount a tmpfs of `size_kib` at `folder` for the duration of the block."""
    os.makedirs(folder, exist_ok=True)
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if not mount or not umount or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    options = f"size={size_kib}k,mode=0777" + (",ro" if readonly else "")
    done = subprocess.run([mount, "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run([umount, str(folder)], check=True)


def fill(folder, leave_bytes=0):
    """Fill the file system of `folder` until about `leave_bytes` are free."""
    path = os.path.join(folder, "filler.bin")
    with open(path, "wb") as f:
        while True:
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            if free <= leave_bytes:
                break
            try:
                f.write(b"\0" * min(free - leave_bytes, 1 << 20))
                f.flush()
            except OSError:
                break
    return path


def free_bytes(folder):
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize

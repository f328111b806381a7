"""Write-to-temporary-then-rename, so no reader ever sees half a file.

Every writer encodes into a hidden temporary file in the *same* folder
(a rename is only atomic within one file system) and commits it at the
end.  On any exception the temporary file is removed and the exception
propagates, so a failed writer leaves nothing behind.

The commit never replaces an existing file: it hard-links the temporary
file to the final name (link creation fails if the name exists, in one
atomic step) and then drops the temporary name.  Where hard links are not
supported (FAT, some network shares) it falls back to an existence check
followed by os.replace(), which is only racy against another process
choosing the very same name in the same instant.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import Iterator

TEMP_SUFFIX = ".partial"


def temp_path_for(final: Path) -> Path:
    # Leading dot: hidden, and not counted by the sequence-number scan.
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return final.with_name(f".{final.name}.{token}{TEMP_SUFFIX}")


def remove_quietly(path: str | os.PathLike) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def commit(temp: Path, final: Path) -> None:
    """Move `temp` to `final`; raise FileExistsError if `final` exists."""
    try:
        os.link(temp, final)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "refusing to overwrite existing file", str(final)) from None
    except (OSError, NotImplementedError, AttributeError):
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, "refusing to overwrite existing file", str(final)) from None
        os.replace(temp, final)
        return
    remove_quietly(temp)


@contextlib.contextmanager
def atomic_output(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; on success it becomes `final`.

        with atomic_output(folder / "x.gif") as tmp:
            image.save(tmp, format="GIF")

    The writer must name the format explicitly: the temporary name ends in
    ".partial", so encoders cannot guess it from the extension.
    """
    final = Path(final)
    if os.path.lexists(final):
        raise FileExistsError(errno.EEXIST, "refusing to overwrite existing file", str(final))
    temp = temp_path_for(final)
    try:
        yield temp
        if not temp.exists():
            raise RuntimeError(f"writer produced no output for {final.name}")
        commit(temp, final)
    except BaseException:
        remove_quietly(temp)
        raise


def write_bytes_atomic(final: str | os.PathLike, data: bytes) -> Path:
    with atomic_output(final) as tmp:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(final)

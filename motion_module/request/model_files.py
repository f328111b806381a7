"""Listing motion-module files and turning a requested name into a safe path.

Model names arrive from API requests, so ``resolve_model`` treats them as
untrusted: a name may only ever select a model file inside the model folder
(after symlinks are resolved), never any other file on the server.

Names are POSIX-style paths relative to the folder ("sub/mm.ckpt"), which is
what ``list_models`` returns and the UI dropdown shows.
"""
from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from .params import ParamError

MODEL_EXTENSIONS = (".ckpt", ".pt", ".pth", ".safetensors")

# How many available names a "not found" message lists before "... and N more".
_LISTED_IN_ERRORS = 10

_DRIVE = re.compile(r"^[A-Za-z]:")


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.fspath(path))


def _inside(real_path: str, real_root: str) -> bool:
    """True when real_path is real_root or below it (both already realpath'd)."""
    try:
        return os.path.commonpath([real_path, real_root]) == real_root
    except ValueError:  # different drives on Windows
        return False


def _is_model_file(name: str) -> bool:
    return name.lower().endswith(MODEL_EXTENSIONS)


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def list_models(folder: str | os.PathLike | None) -> list[str]:
    """Model files under ``folder``, recursively, as sorted relative POSIX names.

    Hidden files/dirs and non-model files (README, .gitkeep) are skipped.
    Symlinks are followed only while they stay inside the folder, so the list
    never offers a file that resolve_model would refuse; remembering visited
    directories also stops symlink loops. A missing folder gives [].
    """
    if not folder or not os.path.isdir(folder):
        return []
    real_root = _real(folder)
    names: list[str] = []
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real_dir = _real(dirpath)
        if real_dir in visited or not _inside(real_dir, real_root):
            dirnames[:] = []
            continue
        visited.add(real_dir)
        # Sorted, real folders before symlinks: when two names reach the same
        # folder, the listing is deterministic and prefers the real one.
        dirnames[:] = sorted(
            (d for d in dirnames if not _is_hidden(d)),
            key=lambda d: (os.path.islink(os.path.join(dirpath, d)), d),
        )
        rel_dir = os.path.relpath(dirpath, folder)
        for filename in filenames:
            if _is_hidden(filename) or not _is_model_file(filename):
                continue
            path = os.path.join(dirpath, filename)
            if os.path.isfile(path) and _inside(_real(path), real_root):
                names.append(_posix_join(rel_dir, filename))
    return sorted(set(names), key=lambda n: (n.casefold(), n))


def _posix_join(rel_dir: str, filename: str) -> str:
    if rel_dir in (".", ""):
        return filename
    return PurePosixPath(*Path(rel_dir).parts, filename).as_posix()


def _refuse(name: object, why: str) -> ParamError:
    return ParamError("model", f"'model': refusing motion module name {name!r}: {why}")


def _split_name(name: object) -> list[str]:
    """Syntactic checks on an untrusted name; returns its path components."""
    if not isinstance(name, str):
        raise _refuse(name, "it must be a string")
    if not name.strip():
        raise ParamError("model", "no motion module selected ('model' is empty)")
    if "\x00" in name:
        raise _refuse(name, "it contains a NUL byte")
    if "\\" in name:
        # Backslashes are separators on Windows only; refusing them everywhere
        # keeps one meaning on every OS (names use '/').
        raise _refuse(name, "use '/' as the folder separator, not '\\'")
    if name.startswith("/") or _DRIVE.match(name) or PureWindowsPath(name).anchor:
        raise _refuse(name, "it must be relative to the motion module folder")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _refuse(name, "'..' is not allowed")
    if any(_is_hidden(part) for part in parts):
        raise _refuse(name, "hidden files and folders are not model files")
    if not parts or not _is_model_file(parts[-1]):
        raise _refuse(name, "it must end in one of " + ", ".join(MODEL_EXTENSIONS))
    return parts


def resolve_model(folder: str | os.PathLike, name: str) -> Path:
    """Path of the model file ``name`` inside ``folder``; ParamError otherwise.

    ``name`` is relative ("sub/mm.ckpt"). A bare file name that only exists
    in a subfolder is accepted when it is unique, because API users of the
    reference extension send bare names. The returned path keeps the name the
    user chose (not the symlink target) under the absolute folder path.
    """
    parts = _split_name(name)
    root = Path(os.path.abspath(folder))
    candidate = root.joinpath(*parts)
    real_root = _real(root)
    if os.path.lexists(candidate):
        if not _inside(_real(candidate), real_root):
            raise _refuse(name, "it points outside the motion module folder")
        if os.path.isfile(candidate):
            return candidate
    if len(parts) == 1:
        return root.joinpath(*_unique_bare_name(root, parts[0]).split("/"))
    raise _not_found(name, list_models(root))


def _unique_bare_name(root: Path, filename: str) -> str:
    available = list_models(root)
    matches = [n for n in available if n.rsplit("/", 1)[-1] == filename]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ParamError(
            "model",
            f"motion module name {filename!r} is ambiguous; use one of: " + ", ".join(matches),
        )
    raise _not_found(filename, available)


def _not_found(name: str, available: list[str]) -> ParamError:
    if not available:
        return ParamError(
            "model",
            f"motion module {name!r} not found: the motion module folder has no "
            "model files (" + ", ".join(MODEL_EXTENSIONS) + ")",
        )
    shown = ", ".join(available[:_LISTED_IN_ERRORS])
    more = len(available) - _LISTED_IN_ERRORS
    if more > 0:
        shown += f" (and {more} more)"
    return ParamError("model", f"'model': motion module {name!r} not found; available: {shown}")

"""Frame interpolation: Deforum's FILM when available, optical flow, or a cross-fade.

    interpolate(frames, x, method="FILM", deforum_path=None, *,
                film_model_path=None) -> list[Image]

Frame count.  Like Deforum (`calculate_frames_to_add`), k = round((N*X - N)
/ (N - 1)) new frames go between each neighbouring pair, so the result
has N + (N-1)*k frames, about N*X.  With fewer than 2 frames or X <= 1
there is nothing to insert and the frames come back unchanged.

Methods.
  "Off"     frames unchanged.
  "FILM"    Deforum's FILM network (`film_net_fp16.pt`).  Deforum is an
            optional WebUI extension: we import its
            `deforum_helpers.src.film_interpolation.film_inference` from
            `{deforum_path}/scripts` (or from sys.path when deforum_path is
            None).  Deforum's FILM code runs on CUDA only.  When it cannot
            be used (not installed, no model, no GPU, an error) a warning
            names the reason and the frames come back unchanged.
  "Linear"  built-in: each inserted frame is a cross-fade (alpha blend) of
            its two neighbours.  No motion estimation, so moving edges
            ghost, but it needs nothing beyond Pillow and is deterministic.
  "Flow"    built-in, motion-compensated: OpenCV's dense optical flow both
            ways between neighbours, both frames warped to the in-between
            time and blended with occlusion- and border-aware weights (see
            flow.py).  Needs cv2 (the WebUI ships OpenCV), no model; on the
            CPU, deterministic.  Without cv2 a warning names the reason and
            the frames come back unchanged, as for FILM.

FILM model file: `film_model_path`, else `{webui}/models/Deforum/
film_net_fp16.pt` derived from `deforum_path` (`{webui}/extensions/<deforum>`).
If the file is missing, Deforum's own downloader is used when it can be
imported (this is what Deforum itself does); otherwise FILM is unavailable.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image

from .frames import normalize_frames

log = logging.getLogger(__name__)

FILM_MODEL_NAME = "film_net_fp16.pt"
_FILM_MODULE = "deforum_helpers.src.film_interpolation.film_inference"


class InterpolationUnavailable(RuntimeError):
    """The requested interpolation backend cannot run here."""


def frames_to_add(count: int, x: float) -> int:
    """Frames inserted between each pair (Deforum's formula)."""
    if count < 2 or x <= 1:
        return 0
    return int(round((count * x - count) / (count - 1)))


def interpolated_count(count: int, x: float) -> int:
    return count + max(0, count - 1) * frames_to_add(count, x)


def linear_interpolate(frames: Sequence[Image.Image], x: float) -> list[Image.Image]:
    frames = normalize_frames(frames)
    k = frames_to_add(len(frames), x)
    if k == 0:
        return frames
    out: list[Image.Image] = []
    for a, b in zip(frames, frames[1:]):
        out.append(a)
        for j in range(1, k + 1):
            out.append(Image.blend(a, b, j / (k + 1)))
    out.append(frames[-1])
    return out


def flow_interpolate(frames: Sequence[Image.Image], x: float) -> list[Image.Image]:
    """Optical-flow in-betweens; raises InterpolationUnavailable without cv2."""
    frames = normalize_frames(frames)
    k = frames_to_add(len(frames), x)
    if k == 0:
        return frames
    try:
        import numpy as np

        from . import flow
    except ImportError as e:
        raise InterpolationUnavailable(
            f"OpenCV (cv2) cannot be imported ({e}); install opencv-python-headless") from e

    out: list[Image.Image] = []
    arrays = [np.asarray(f) for f in frames]
    for a, b, frame in zip(arrays, arrays[1:], frames):
        out.append(frame)
        pair = flow.flow_pair(a, b)  # the flows serve every in-between of the pair
        out.extend(Image.fromarray(flow.in_between(pair, j / (k + 1))) for j in range(1, k + 1))
    out.append(frames[-1])
    return out


def _default_model_path(deforum_path: str | os.PathLike | None) -> Path | None:
    if not deforum_path:
        return None
    # {webui}/extensions/{deforum} -> {webui}/models/Deforum
    return Path(deforum_path).resolve().parent.parent / "models" / "Deforum" / FILM_MODEL_NAME


@contextlib.contextmanager
def _on_sys_path(path: Path | None):
    if path is None or str(path) in sys.path:
        yield
        return
    sys.path.insert(0, str(path))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(path))


def load_film(deforum_path: str | os.PathLike | None = None) -> Callable:
    """Deforum's `run_film_interp_infer`, or InterpolationUnavailable."""
    scripts = None
    if deforum_path:
        scripts = Path(deforum_path) / "scripts"
        if not (scripts / "deforum_helpers").is_dir():
            raise InterpolationUnavailable(f"no Deforum extension at {deforum_path} (missing scripts/deforum_helpers)")
    with _on_sys_path(scripts):
        try:
            module = importlib.import_module(_FILM_MODULE)
        except Exception as e:  # any import-time failure means "not usable"
            raise InterpolationUnavailable(f"Deforum's FILM module cannot be imported ({type(e).__name__}: {e})") from e
    fn = getattr(module, "run_film_interp_infer", None)
    if not callable(fn):
        raise InterpolationUnavailable("Deforum's FILM module has no run_film_interp_infer()")
    return fn


def _ensure_model(model_path: Path, deforum_path: str | os.PathLike | None) -> None:
    if model_path.is_file():
        return
    scripts = Path(deforum_path) / "scripts" if deforum_path else None
    with _on_sys_path(scripts):
        try:
            helper = importlib.import_module("deforum_helpers.frame_interpolation")
            download = helper.check_and_download_film_model
        except Exception as e:
            raise InterpolationUnavailable(
                f"FILM model {model_path} is missing and Deforum's downloader is unavailable ({e})"
            ) from e
        try:
            download(FILM_MODEL_NAME, str(model_path.parent))
        except Exception as e:
            raise InterpolationUnavailable(f"FILM model {model_path} could not be downloaded ({e})") from e
    if not model_path.is_file():
        raise InterpolationUnavailable(f"FILM model {model_path} is missing")


def film_interpolate(
    frames: Sequence[Image.Image],
    x: float,
    deforum_path: str | os.PathLike | None = None,
    film_model_path: str | os.PathLike | None = None,
) -> list[Image.Image]:
    """Run Deforum's FILM; raises InterpolationUnavailable when it can't."""
    frames = normalize_frames(frames)
    k = frames_to_add(len(frames), x)
    if k == 0:
        return frames
    run = load_film(deforum_path)
    model = Path(film_model_path) if film_model_path else _default_model_path(deforum_path)
    if model is None:
        raise InterpolationUnavailable("FILM model path unknown: pass film_model_path or deforum_path")
    _ensure_model(model, deforum_path)

    with tempfile.TemporaryDirectory(prefix="animatediff-film-") as work:
        src, dst = Path(work) / "in", Path(work) / "out"
        src.mkdir()
        # Deforum sorts its inputs by name, hence zero-padded names.
        for i, frame in enumerate(frames):
            frame.save(src / f"{i:09}.png")
        try:
            run(model_path=str(model), input_folder=str(src), save_folder=str(dst), inter_frames=k)
        except Exception as e:
            raise InterpolationUnavailable(f"Deforum's FILM failed ({type(e).__name__}: {e})") from e
        outputs = sorted(dst.glob("*.png")) if dst.is_dir() else []
        expected = interpolated_count(len(frames), x)
        if len(outputs) != expected:
            # Deforum prints errors instead of raising; a wrong count is
            # how a silent failure shows.
            raise InterpolationUnavailable(f"Deforum's FILM produced {len(outputs)} frames, expected {expected}")
        result = []
        for p in outputs:
            with Image.open(p) as im:
                result.append(im.convert("RGB"))
    return result


def interpolate(
    frames: Sequence[Image.Image],
    x: int,
    method: str = "FILM",
    deforum_path: str | os.PathLike | None = None,
    *,
    film_model_path: str | os.PathLike | None = None,
) -> list[Image.Image]:
    """Interpolate `frames` by about `x` with one of METHODS (see the module docstring)."""
    frames = list(frames)
    if method == "Off" or frames_to_add(len(frames), x) == 0:
        return frames
    if method == "Linear":
        return linear_interpolate(frames, x)
    name = "Flow" if method == "Flow" else "FILM"
    try:
        if name == "Flow":
            return flow_interpolate(frames, x)
        return film_interpolate(frames, x, deforum_path, film_model_path)
    except InterpolationUnavailable as e:
        log.warning("%s interpolation unavailable: %s; frames are left uninterpolated", name, e)
        return frames


#: Interpolation methods, the only place they are declared.
METHODS = {
    "Off": "frames unchanged",
    "FILM": "Deforum's FILM network (CUDA only)",
    "Linear": "built-in cross-fade between neighbouring frames",
    "Flow": "built-in motion-compensated in-betweens from OpenCV's optical flow",
}

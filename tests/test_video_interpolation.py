"""Ping-pong and frame interpolation (FILM via a stand-in Deforum, Linear)."""

import logging
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


from motion_module.video import add_reverse, interpolate
from motion_module.video.interpolation import frames_to_add, interpolated_count


def solid_frames(values, size=(8, 6)):
    return [Image.new("RGB", size, (v, v, v)) for v in values]


def grey(im):
    return int(np.asarray(im)[0, 0, 0])


@pytest.fixture
def no_deforum(monkeypatch):
    """Forget any deforum_helpers imported by an earlier test."""
    for name in [m for m in sys.modules if m == "deforum_helpers" or m.startswith("deforum_helpers.")]:
        monkeypatch.delitem(sys.modules, name)
    yield
    for name in [m for m in sys.modules if m == "deforum_helpers" or m.startswith("deforum_helpers.")]:
        sys.modules.pop(name, None)


def test_add_reverse():
    assert add_reverse([0, 1, 2, 3]) == [0, 1, 2, 3, 2, 1]
    assert add_reverse([0, 1]) == [0, 1]
    assert add_reverse([0]) == [0]
    assert add_reverse([]) == []


@pytest.mark.parametrize(
    "n,x,k",
    [(16, 10, 10), (16, 2, 1), (8, 3, 2), (2, 10, 18), (16, 1, 0), (1, 10, 0), (0, 10, 0), (24, 4, 3)],
)
def test_frames_to_add_matches_deforum_formula(n, x, k):
    assert frames_to_add(n, x) == k
    if n >= 2:
        assert k == round((n * x - n) / (n - 1))
    assert interpolated_count(n, x) == n + max(0, n - 1) * k


def test_linear_crossfade():
    out = interpolate(solid_frames([0, 90, 180]), 2, method="Linear")
    # k = round((3*2-3)/2) = 2 frames between each pair
    assert [grey(f) for f in out] == [0, 30, 60, 90, 120, 150, 180]
    assert all(f.size == (8, 6) for f in out)


def test_off_and_degenerate_inputs():
    frames = solid_frames([0, 100])
    assert interpolate(frames, 10, method="Off") == frames
    assert interpolate(frames[:1], 10, method="Linear") == frames[:1]
    assert interpolate(frames, 1, method="Linear") == frames


def test_film_unavailable_returns_frames_unchanged(no_deforum, tmp_path, caplog):
    frames = solid_frames([0, 100, 200])
    with caplog.at_level(logging.WARNING):
        out = interpolate(frames, 4, method="FILM", deforum_path=tmp_path / "nope")
    assert out == frames
    assert "FILM interpolation unavailable" in caplog.text and "no Deforum extension" in caplog.text


def _fake_deforum(root: Path, with_model=True, broken=False):
    """A minimal stand-in for {webui}/extensions/sd-webui-deforum."""
    ext = root / "extensions" / "sd-webui-deforum"
    pkg = ext / "scripts" / "deforum_helpers"
    film = pkg / "src" / "film_interpolation"
    film.mkdir(parents=True)
    for d in (pkg, pkg / "src", film):
        (d / "__init__.py").write_text("")
    # Same contract as Deforum's run_film_interp_infer: reads *.png sorted by
    # name from input_folder, writes frame_NNNNN.png into save_folder,
    # inter_frames new frames between each pair.
    (film / "film_inference.py").write_text(textwrap.dedent(f"""
        import os, glob
        from PIL import Image
        CALLS = []
        def run_film_interp_infer(model_path=None, input_folder=None, save_folder=None, inter_frames=None):
            CALLS.append(dict(model_path=model_path, inter_frames=inter_frames))
            if {broken!r}:
                raise RuntimeError("CUDA not available")
            paths = sorted(glob.glob(os.path.join(input_folder, "*.png")))
            os.makedirs(save_folder, exist_ok=True)
            ims = [Image.open(p).convert("RGB") for p in paths]
            n = 0
            for a, b in zip(ims, ims[1:]):
                for j in range(inter_frames + 1):
                    Image.blend(a, b, j / (inter_frames + 1)).save(os.path.join(save_folder, f"frame_{{n:05d}}.png"))
                    n += 1
            ims[-1].save(os.path.join(save_folder, f"frame_{{n:05d}}.png"))
    """))
    model = root / "models" / "Deforum" / "film_net_fp16.pt"
    if with_model:
        model.parent.mkdir(parents=True)
        model.write_bytes(b"weights")
    return ext, model


def test_film_through_deforum(no_deforum, tmp_path):
    ext, model = _fake_deforum(tmp_path)
    frames = solid_frames([0, 60, 120, 180])
    out = interpolate(frames, 3, method="FILM", deforum_path=ext)
    k = frames_to_add(4, 3)
    assert len(out) == 4 + 3 * k
    assert [grey(f) for f in out][:: k + 1] == [0, 60, 120, 180]
    calls = sys.modules["deforum_helpers.src.film_interpolation.film_inference"].CALLS
    assert calls == [{"model_path": str(model.resolve()), "inter_frames": k}]
    assert str(ext / "scripts") not in sys.path  # path change was temporary


def test_film_missing_model_or_failure_is_reported(no_deforum, tmp_path, caplog):
    ext, _ = _fake_deforum(tmp_path / "a", with_model=False)
    frames = solid_frames([0, 100])
    with caplog.at_level(logging.WARNING):
        assert interpolate(frames, 3, deforum_path=ext) == frames
    assert "FILM model" in caplog.text and "missing" in caplog.text


def test_film_runtime_error_falls_back(no_deforum, tmp_path, caplog):
    ext, _ = _fake_deforum(tmp_path, broken=True)
    frames = solid_frames([0, 100])
    with caplog.at_level(logging.WARNING):
        assert interpolate(frames, 3, deforum_path=ext) == frames
    assert "CUDA not available" in caplog.text


def test_explicit_model_path(no_deforum, tmp_path):
    ext, _ = _fake_deforum(tmp_path, with_model=False)
    model = tmp_path / "elsewhere.pt"
    model.write_bytes(b"w")
    out = interpolate(solid_frames([0, 100]), 2, deforum_path=ext, film_model_path=model)
    assert len(out) == 2 + frames_to_add(2, 2)

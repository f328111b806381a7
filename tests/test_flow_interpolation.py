"""interp "Flow": motion-compensated in-betweens from OpenCV's optical flow."""

import logging
import sys

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from motion_module import video
from motion_module.request.infotext import format_infotext, paste_fields
from motion_module.request.params import AnimateDiffParams, ParamError, from_dict
from motion_module.video import VideoOptions, interpolate, save_video
from motion_module.video.interpolation import METHODS, frames_to_add, interpolated_count

SIZE = 96


def texture(h, w, seed, sigma=1.5):
    """Smooth random colour texture: every patch is distinct, as flow needs."""
    noise = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    t = cv2.GaussianBlur(noise, (0, 0), sigma)
    return ((t - t.min()) / (t.max() - t.min()) * 255).astype(np.uint8)


def view(image, x, y, size=SIZE):
    """The size x size window of `image` at sub-pixel offset (x, y)."""
    m = np.float32([[1, 0, x], [0, 1, y]])
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)


CANVAS = texture(SIZE + 64, SIZE + 64, 0)


def pan(tau, dx=7.0, dy=3.0):
    return view(CANVAS, 32 + dx * tau, 32 + dy * tau)


BACKGROUND = (texture(SIZE + 64, SIZE + 64, 1) * 0.6).astype(np.uint8)
OBJECT = texture(32, 32, 2) // 2 + 128  # brighter than the background, textured


def occlusion_scene(tau, object_dx=12, background_dx=-4):
    """A square moving right over a background moving left."""
    frame = view(BACKGROUND, 32 + background_dx * tau, 32)
    x = round(24 + object_dx * tau)
    frame[32:64, x:x + 32] = OBJECT
    return frame


def middle(a, b, method):
    """The one in-between of two frames (x = 1.5 adds one frame to a pair)."""
    assert frames_to_add(2, 1.5) == 1
    out = interpolate([Image.fromarray(a), Image.fromarray(b)], 1.5, method=method)
    assert len(out) == 3
    return np.asarray(out[1], np.float64)


def psnr(x, truth):
    mse = np.mean((x - truth) ** 2)
    return 10 * np.log10(255 ** 2 / mse) if mse else np.inf


def abs_err(x, truth):
    return np.abs(x - truth).mean(axis=2)


def test_flow_is_a_declared_method():
    assert list(METHODS) == ["Off", "FILM", "Linear", "Flow"]


@pytest.mark.parametrize("n, x", [(5, 2), (5, 3), (4, 4), (3, 10), (2, 2), (6, 1), (1, 10)])
def test_frame_counts_match_linear_and_keep_the_originals(n, x):
    frames = [Image.fromarray(pan(i)) for i in range(n)]
    out = interpolate(frames, x, method="Flow")
    k = frames_to_add(n, x)
    assert len(out) == interpolated_count(n, x) == len(interpolate(frames, x, method="Linear"))
    assert all(np.array_equal(np.asarray(out[i * (k + 1)]), np.asarray(f)) for i, f in enumerate(frames))
    assert all(f.size == (SIZE, SIZE) and f.mode == "RGB" for f in out)


def test_translation_is_reproduced_far_better_than_a_cross_fade():
    a, truth, b = pan(0), pan(0.5), pan(1)  # 7 px right, 3 down: the middle is 3.5, 1.5 (sub-pixel)
    flow, linear = psnr(middle(a, b, "Flow"), truth), psnr(middle(a, b, "Linear"), truth)
    assert flow > 32 and flow > linear + 12, (flow, linear)


def test_every_in_between_follows_the_motion():
    frames = [pan(tau) for tau in (0, 1, 2)]
    out = interpolate([Image.fromarray(f) for f in frames], 3, method="Flow")
    k = frames_to_add(3, 3)  # 3 per pair, at 1/4, 2/4, 3/4
    assert len(out) == 3 + 2 * k
    for j, frame in enumerate(out):
        assert psnr(np.asarray(frame, np.float64), pan(j / (k + 1))) > 30, j


def test_identical_frames_come_back_unchanged():
    a = pan(0)
    assert np.abs(middle(a, a, "Flow") - a).max() <= 1


def test_borders_are_filled_from_the_frame_that_shows_them():
    """Panning brings new content in at one edge: it exists only in the later
    frame, and the earlier frame's warp would read outside the image."""
    a, truth, b = pan(0), pan(0.5), pan(1)
    flow, linear = abs_err(middle(a, b, "Flow"), truth), abs_err(middle(a, b, "Linear"), truth)
    edge = np.zeros((SIZE, SIZE), bool)
    edge[:4] = edge[-4:] = True
    edge[:, :4] = edge[:, -4:] = True
    assert flow[edge].mean() < 6 and flow[edge].mean() < linear[edge].mean() / 4, (flow[edge].mean(),
                                                                                   linear[edge].mean())
    outer_ring = np.concatenate([flow[0], flow[-1], flow[:, 0], flow[:, -1]])
    assert outer_ring.max() < 40  # no black or smeared edge anywhere


def test_an_object_moving_over_a_background():
    """At t = 0.5 the square sits at x 30-62; left of it background appears
    (seen only in the later frame), right of it background is being covered
    (seen only in the earlier one)."""
    a, truth, b = occlusion_scene(0), occlusion_scene(0.5), occlusion_scene(1)
    flow_mid, linear_mid = middle(a, b, "Flow"), middle(a, b, "Linear")
    assert psnr(flow_mid, truth) > 34 and psnr(flow_mid, truth) > psnr(linear_mid, truth) + 12
    edges = np.zeros((SIZE, SIZE), bool)
    edges[32:64, 22:38] = edges[32:64, 54:70] = True  # both moving edges and the strips beside them
    flow, linear = abs_err(flow_mid, truth)[edges].mean(), abs_err(linear_mid, truth)[edges].mean()
    assert flow < 6 and flow < linear / 5, (flow, linear)
    # No ghost: inside the square at t = 0.5 there is only the square.
    square = abs_err(flow_mid, truth)[34:62, 32:60]
    assert square.mean() < 3


def test_frames_too_small_for_flow_cross_fade():
    frames = [Image.new("RGB", (8, 6), (v, v, v)) for v in (0, 90)]
    flow = [np.asarray(f).astype(int) for f in interpolate(frames, 3, method="Flow")]
    linear = [np.asarray(f).astype(int) for f in interpolate(frames, 3, method="Linear")]
    assert len(flow) == len(linear) and all(np.abs(f - g).max() <= 1 for f, g in zip(flow, linear))


def test_without_cv2_frames_come_back_unchanged_with_a_warning(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    monkeypatch.delitem(sys.modules, "motion_module.video.flow", raising=False)
    monkeypatch.delattr(video, "flow", raising=False)
    frames = [Image.fromarray(pan(i)) for i in range(3)]
    with caplog.at_level(logging.WARNING):
        out = interpolate(frames, 2, method="Flow")
    assert out == frames
    assert "Flow interpolation unavailable" in caplog.text and "opencv-python-headless" in caplog.text


def test_every_output_format_gets_the_interpolated_frames(tmp_path):
    frames = interpolate([Image.fromarray(pan(i)[:32, :48]) for i in range(5)], 2, method="Flow")
    assert len(frames) == 9  # 5 + 4 * round((10 - 5) / 4)
    saved = save_video(frames, ["GIF", "MP4", "WEBP", "WEBM", "PNG"], VideoOptions(fps=8), tmp_path, 1)
    assert saved.errors == {}
    for fmt in ("GIF", "WEBP"):
        with Image.open(saved.paths[fmt]) as im:
            assert im.n_frames == 9, fmt
    for fmt in ("MP4", "WEBM"):
        reader = imageio_ffmpeg.read_frames(str(saved.paths[fmt]))
        next(reader)
        assert sum(1 for _ in reader) == 9, fmt
    assert len(saved.png_frames) == 9


# --- the parameter ------------------------------------------------------------------------------


def enabled(**kw):
    return AnimateDiffParams(enable=True, model="mm.ckpt", **kw)


def test_flow_is_accepted_in_any_case_and_by_alias():
    assert enabled(interp="flow").interp == "Flow"
    assert from_dict({"enable": True, "model": "mm.ckpt", "frame_interpolation": "FLOW"}).interp == "Flow"


@pytest.mark.parametrize("bad", ["Flows", "optical flow", "", 2])
def test_bad_interp_values_name_the_field(bad):
    with pytest.raises(ParamError) as info:
        from_dict({"enable": True, "model": "mm.ckpt", "interp": bad})
    assert info.value.field == "interp"
    assert str(info.value).startswith("AnimateDiff: 'interp' must be one of Off, FILM, Linear, Flow, got ")


def test_infotext_carries_flow_like_film():
    params = enabled(interp="Flow", interp_x=2)
    text = format_infotext(params, params.resolve(None), mm_hash="69ed0f5f", schedule="linear 0.00085-0.012",
                           is_img2img=False)
    assert "interp: Flow, interp_x: 2" in text
    fields = paste_fields(text, False)
    assert fields["interp"] == "Flow" and fields["interp_x"] == 2

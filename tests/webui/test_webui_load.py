"""Load: many generations in a row and two clients at once, against a real
WebUI (skipped unless SD_WEBUI_URL is set). The figures go into the run's summary
(tests/conftest.py) for docs/hardening.md.

- 50 consecutive API generations with mixed parameters: every video comes
  back decodable with its frames; the WebUI process's resident memory after
  the last run is within 5% of after the first, though the runs switch
  between four motion modules; the extension holds nothing between runs
  but the cached module (GET /animatediff/v1/status) and no callback list
  grows.
- Two clients at the same moment: both get their own complete video and
  their files never collide.
"""

import base64
import io
import itertools
import os
import threading

import pytest
from PIL import Image

URL = os.environ.get("SD_WEBUI_URL", "").rstrip("/")
pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")
BASE = {"prompt": "a cat", "negative_prompt": "a dog", "steps": 2, "width": 64, "height": 64,
        "sampler_name": "Euler", "cfg_scale": 7}
RUNS = int(os.environ.get("SD_WEBUI_LOAD_RUNS", "50"))


def _rss(webui):
    return webui.get("/sdapi/v1/memory").json()["ram"]["used"]


def _gif_frames(b64):
    return Image.open(io.BytesIO(base64.b64decode(b64))).n_frames


def _variants(motion_modules):
    kinds = ["v1", "v2", "v3", "animatelcm"]
    options = [
        {"video_length": 8},
        {"video_length": 12, "batch_size": 8, "closed_loop": "R+P"},
        {"video_length": 8, "motion_scale": 0.5, "freenoise": True},
        {"video_length": 6, "format": ["GIF", "MP4"]},
        {"video_length": 8, "closed_loop": "A", "batch_size": 8},
    ]
    for i, (kind, extra) in enumerate(zip(itertools.cycle(kinds), itertools.cycle(options))):
        yield {"model": motion_modules[kind], "format": ["GIF"], **extra, "request_id": f"load{i}"}


def _expected_frames(args):
    frames = args["video_length"]
    return 2 * frames - 2 if args.get("closed_loop") == "A" and frames <= args.get("batch_size", 16) else frames


def test_fifty_generations_keep_memory_flat_and_leave_nothing_behind(webui, motion_modules, figures):
    status_before = webui.get("/animatediff/v1/status").json()
    rss, frames_seen = [], []
    for i, args in zip(range(RUNS), _variants(motion_modules)):
        r = webui.post("/sdapi/v1/txt2img", json={**BASE, "seed": 100 + i, "alwayson_scripts": {
            "AnimateDiff": {"args": [{"enable": True, **args}]}}})
        assert r.status_code == 200, (i, r.text[:500])
        images = r.json()["images"]
        frames = _gif_frames(images[0])
        assert frames == _expected_frames(args), (i, args, frames)
        frames_seen.append(frames)
        if "MP4" in args["format"]:
            assert base64.b64decode(images[1])[4:8] == b"ftyp"
        rss.append(_rss(webui))
        status = webui.get("/animatediff/v1/status").json()
        assert not status["unet_injected"] and status["decoded_frame_folders"] == 0, status
        # The module this run replaced is gone, not waiting for Python's cycle collector.
        assert status["modules_in_memory"] == 1, status
        assert status["callbacks"] == status_before["callbacks"], (status["callbacks"], status_before["callbacks"])
    growth = (rss[-1] - rss[0]) / rss[0]
    figures.append(f"load: {RUNS} generations ({sum(frames_seen)} frames); WebUI RSS after the first "
          f"{rss[0] / 2**20:.0f} MiB, after the last {rss[-1] / 2**20:.0f} MiB ({growth * 100:+.1f}%), "
          f"max {max(rss) / 2**20:.0f} MiB")
    assert growth < 0.05, rss


def test_two_clients_at_once_get_their_own_videos(webui, motion_modules, figures):
    # The same seed and request id from both: the same video, and still two files with two names.
    import glob
    import uuid

    tag = f"twin{uuid.uuid4().hex[:6]}"
    outputs = os.path.join(webui.flags()["data_dir"], "outputs", "txt2img-images",
                           "AnimateDiff")
    results = {}

    def client(name):
        results[name] = webui.post("/sdapi/v1/txt2img", json={**BASE, "seed": 7, "alwayson_scripts": {
            "AnimateDiff": {"args": [{"enable": True, "model": motion_modules["v2"], "video_length": 8,
                                      "format": ["GIF", "TXT"], "request_id": tag}]}}})

    threads = [threading.Thread(target=client, args=(name,)) for name in ("alpha", "beta")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    assert results["alpha"].status_code == results["beta"].status_code == 200
    alpha, beta = (results[n].json() for n in ("alpha", "beta"))
    assert _gif_frames(alpha["images"][0]) == _gif_frames(beta["images"][0]) == 8
    assert alpha["images"][0] == beta["images"][0]
    files = sorted(glob.glob(os.path.join(outputs, "*", f"*{tag}*")))
    gifs = [f for f in files if f.endswith(".gif")]
    figures.append(f"load: two clients at once wrote {', '.join(os.path.basename(f) for f in gifs)}")
    assert len(gifs) == 2 and len(set(map(os.path.basename, gifs))) == 2
    assert len([f for f in files if f.endswith(".txt")]) == 2
    for gif in gifs:
        assert Image.open(gif).n_frames == 8

"""AnimateDiff through a real WebUI over HTTP (skipped unless SD_WEBUI_URL is set).

Every request is small (64x64, 2 steps, 8 frames) so that a CPU-only WebUI
with random SD1.5 weights answers in seconds.
"""

import base64
import io
import json
import os
import tempfile

import numpy as np
import pytest
from PIL import Image

URL = os.environ.get("SD_WEBUI_URL", "").rstrip("/")
KINDS = ("v1", "v2", "v3", "animatelcm")  # the SD1.5 kinds the fixture generates (see conftest.py)

pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")

# Prompts the random-weight test checkpoint handles without NaNs (its random
# text encoder overflows on some words, with or without this extension).
BASE = {"prompt": "a cat", "negative_prompt": "a dog", "steps": 2, "width": 64, "height": 64,
        "seed": 1234, "sampler_name": "Euler", "cfg_scale": 7}
FRAMES = 8


def ad(**params):
    return {"AnimateDiff": {"args": [{"enable": True, "video_length": FRAMES, **params}]}}


def decode(b64):
    return base64.b64decode(b64)


def gif_frames(data):
    im = Image.open(io.BytesIO(data))
    frames, durations = [], []
    for i in range(im.n_frames):
        im.seek(i)
        frames.append(np.asarray(im.convert("RGB"), dtype=np.float32))
        durations.append(im.info.get("duration"))
    return frames, durations, im.info


def mp4_frame_count(data):
    import imageio_ffmpeg

    with tempfile.NamedTemporaryFile(suffix=".mp4", delete=False) as f:
        f.write(data)
    try:
        reader = imageio_ffmpeg.read_frames(f.name)
        meta = next(reader)
        return sum(1 for _ in reader), meta
    finally:
        os.unlink(f.name)


def plain_images(webui, **extra):
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, "batch_size": 2, **extra})
    assert r.status_code == 200, r.text
    return r.json()["images"]


@pytest.fixture(scope="module")
def baseline(webui, motion_modules):
    return plain_images(webui)


def run(webui, route="txt2img", expect=200, **payload):
    r = webui.post(f"/sdapi/v1/{route}", json={**BASE, **payload})
    assert r.status_code == expect, r.text[:2000]
    return r.json()


def test_models_endpoint_lists_every_kind(webui, motion_modules):
    listed = {m["name"]: m["kind"] for m in webui.get("/animatediff/v1/models").json()["models"]}
    for kind, name in motion_modules.items():
        assert listed[name] == kind


def test_params_endpoint_is_the_declaration(webui, motion_modules):
    from motion_module.request.docs import parameter_listing

    assert webui.get("/animatediff/v1/params").json()["params"] == json.loads(json.dumps(parameter_listing()))


def test_registered_settings_have_the_declared_defaults(webui, motion_modules):
    # Every declared setting is on the Settings page (component `setting_<key>`), showing the registration's
    # default where config.json has no value; the suite sets only the model path. (/sdapi/v1/options lists
    # only the keys config.json holds.)
    from motion_module.request.settings import SETTINGS

    shown = {c["props"]["elem_id"][len("setting_"):]: c["props"].get("value")
             for c in webui.get("/config").json()["components"]
             if str(c.get("props", {}).get("elem_id", "")).startswith("setting_animatediff")}
    stored = webui.options()
    for setting in SETTINGS:
        assert setting.key in shown, setting.key
        if setting.key in stored or setting.key == "animatediff_model_path":
            continue
        value = shown[setting.key]
        if setting.default is None:
            assert value in (None, ""), (setting.key, value)
        elif value != setting.default:
            pytest.fail(f"{setting.key}: registered default {value!r}, declared {setting.default!r}")


@pytest.mark.parametrize("kind", KINDS)
def test_txt2img_each_kind_returns_a_decodable_video(webui, motion_modules, baseline, kind):
    out = run(webui, alwayson_scripts=ad(model=motion_modules[kind], format=["GIF", "MP4", "TXT"], fps=8))
    images = out["images"]
    assert len(images) == 2  # GIF + MP4
    frames, durations, info = gif_frames(decode(images[0]))
    assert len(frames) == FRAMES and frames[0].shape == (64, 64, 3)
    assert abs(sum(durations) - FRAMES * 125) <= 10
    count, meta = mp4_frame_count(decode(images[1]))
    assert count == FRAMES and abs(meta["fps"] - 8) < 0.01
    infotext = json.loads(out["info"])["infotexts"][0]
    assert 'AnimateDiff: "enable: True' in infotext and f"model: {motion_modules[kind]}" in infotext
    assert "schedule: linear 0.00085-0.012" in infotext and "mm_hash: " in infotext
    assert info.get("comment", b"").decode("utf-8").startswith("a cat")
    # the frames move: a video, not one image repeated
    assert np.abs(frames[0] - frames[-1]).mean() > 1.0
    assert plain_images(webui) == baseline  # bit-identical plain txt2img afterwards


def test_frames_are_returned_with_frame_format(webui, motion_modules):
    out = run(webui, alwayson_scripts=ad(model=motion_modules["v2"], format=["GIF", "Frame"]))
    assert len(out["images"]) == 1 + FRAMES
    first = Image.open(io.BytesIO(decode(out["images"][1])))
    assert first.size == (64, 64)


def test_positional_list_form(webui, motion_modules):
    # PARAM_ORDER: model, format, enable, video_length, fps, loop_number, closed_loop, batch_size
    args = [motion_modules["v3"], ["GIF"], True, FRAMES, 4, 2, "N", 16]
    out = run(webui, alwayson_scripts={"AnimateDiff": {"args": args}})
    frames, durations, info = gif_frames(decode(out["images"][0]))
    assert len(frames) == FRAMES and durations[0] == 250 and info.get("loop") == 1  # 2 plays = 1 repeat


def test_webuiapi_shorthand_false_is_a_plain_generation(webui, motion_modules, baseline):
    # The webuiapi client sends {'animatediff': {'args': [False]}} with every txt2img.
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, "batch_size": 2,
                                             "alwayson_scripts": {"animatediff": {"args": [False]}}})
    assert r.status_code == 200 and r.json()["images"] == baseline


def test_unknown_keys_are_ignored(webui, motion_modules):
    out = run(webui, alwayson_scripts=ad(model=motion_modules["v2"], format=["GIF"], not_a_key=1))
    assert len(gif_frames(decode(out["images"][0]))[0]) == FRAMES


@pytest.mark.parametrize("bad,field", [
    ({"fps": 0}, "fps"), ({"closed_loop": "X"}, "closed_loop"), ({"format": ["AVI"]}, "format"),
    ({"model": "../escape.ckpt"}, "model"), ({"model": "/etc/passwd"}, "model"),
    ({"model": "does_not_exist.ckpt"}, "model"), ({"video_length": "many"}, "video_length"),
    ({"overlap": 20}, "overlap"), ({"batch_size": 30, "video_length": 30, "model": "random_v1.safetensors"},
                                   "batch_size"),
    ({"request_id": "../../x"}, "request_id"), ({"request_id": "a\x00b\x1b[2J"}, "request_id"),
    ({"request_id": "x" * 10000}, "request_id"),
])
def test_bad_args_are_refused_with_the_field_and_leave_no_trace(webui, motion_modules, baseline, bad, field):
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, "alwayson_scripts": ad(**bad)})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == field and field in body["detail"]
    assert plain_images(webui) == baseline


def test_failed_run_leaves_plain_txt2img_bit_identical(webui, motion_modules, baseline):
    # An SD1.5-only check the pre-validation cannot make: context above the
    # position encoding when the model is chosen implicitly (empty name).
    names = sorted(motion_modules.values())
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, "alwayson_scripts": ad(
        model="", video_length=70, batch_size=64)})
    if names[0] != motion_modules["animatelcm"]:
        assert r.status_code >= 400
        assert "position-encoding" in r.text
    assert plain_images(webui) == baseline


def test_context_windows_for_long_videos(webui, motion_modules):
    out = run(webui, alwayson_scripts=ad(model=motion_modules["v1"], format=["GIF"], video_length=20,
                                         batch_size=8, overlap=2, closed_loop="R-P"))
    frames, _, _ = gif_frames(decode(out["images"][0]))
    assert len(frames) == 20
    assert "video_length: 20" in json.loads(out["info"])["infotexts"][0]


def test_forge_multidiffusion_runs_inside_each_context_window(webui, motion_modules):
    """Forge's built-in MultiDiffusion sets a model function wrapper of its own
    before our script's hook sets ours; ours runs it inside each context
    window (tiles of every window's frames), so the two work together."""
    webui.skip_on_a1111("MultiDiffusion Integrated is built into Forge")
    video = ad(model=motion_modules["v2"], format=["GIF"], video_length=12, batch_size=8, overlap=2)
    tiled = {**video, "MultiDiffusion Integrated": {"args": [True, "MultiDiffusion", 64, 64, 32, 4]}}
    out = run(webui, width=128, alwayson_scripts=tiled)
    frames, _, _ = gif_frames(decode(out["images"][0]))
    info = json.loads(out["info"])["infotexts"][0]
    assert len(frames) == 12 and "multidiffusion_enabled: True" in info and "video_length: 12" in info
    untiled, _, _ = gif_frames(decode(run(webui, width=128, alwayson_scripts=video)["images"][0]))
    assert not np.array_equal(np.stack(frames), np.stack(untiled))  # the tiles ran


def test_closed_loop_a_appends_reversed_frames(webui, motion_modules):
    out = run(webui, alwayson_scripts=ad(model=motion_modules["v2"], format=["GIF"], closed_loop="A"))
    frames, _, _ = gif_frames(decode(out["images"][0]))
    assert len(frames) == 2 * FRAMES - 2
    assert np.array_equal(frames[FRAMES], frames[FRAMES - 2])


def test_flow_interpolation_adds_in_betweens_to_every_format(webui, motion_modules):
    out = run(webui, alwayson_scripts=ad(model=motion_modules["v2"], format=["GIF", "MP4"], fps=8, interp="Flow",
                                         interp_x=2))
    images = out["images"]
    assert len(images) == 2  # GIF + MP4
    added = round((FRAMES * 2 - FRAMES) / (FRAMES - 1))  # frames_to_add(8, 2), Deforum's formula: 1
    expected = FRAMES + (FRAMES - 1) * added
    assert expected == 15
    frames, durations, _ = gif_frames(decode(images[0]))
    assert len(frames) == expected and frames[0].shape == (64, 64, 3)
    assert abs(sum(durations) - expected * 125) <= 10  # FPS unchanged, as with FILM and Linear
    count, meta = mp4_frame_count(decode(images[1]))
    assert count == expected and abs(meta["fps"] - 8) < 0.01
    infotext = json.loads(out["info"])["infotexts"][0]
    assert "interp: Flow, interp_x: 2" in infotext  # written like FILM's "interp: FILM, interp_x: 10"


def test_batch_count_gives_one_video_each(webui, motion_modules):
    out = run(webui, n_iter=2, alwayson_scripts=ad(model=motion_modules["v2"], format=["GIF"]))
    assert len(out["images"]) == 2
    a, b = (gif_frames(decode(x))[0] for x in out["images"])
    assert len(a) == len(b) == FRAMES and np.abs(a[0] - b[0]).mean() > 1.0
    assert json.loads(out["info"])["all_seeds"][FRAMES] == BASE["seed"] + FRAMES  # WebUI seed rules


@pytest.mark.parametrize("kind", KINDS)
def test_img2img_with_last_frame(webui, motion_modules, baseline, kind):
    init = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8"))
    last = Image.fromarray(np.full((64, 64, 3), 200, dtype="uint8"))

    def b64(im):
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return base64.b64encode(buf.getvalue()).decode()

    out = run(webui, route="img2img", init_images=[b64(init)], denoising_strength=0.75,
              alwayson_scripts=ad(model=motion_modules[kind], format=["GIF"], last_frame=b64(last),
                                  latent_power=1.5, latent_scale=16))
    frames, _, _ = gif_frames(decode(out["images"][0]))
    assert len(frames) == FRAMES
    info = json.loads(out["info"])["infotexts"][0]
    assert "latent_power: 1.5" in info and "latent_scale: 16" in info
    assert plain_images(webui) == baseline


def test_hires_fix_runs_on_the_whole_video(webui, motion_modules, baseline):
    out = run(webui, enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", hr_second_pass_steps=1,
              denoising_strength=0.5, alwayson_scripts=ad(model=motion_modules["v1"], format=["GIF"]))
    frames, _, _ = gif_frames(decode(out["images"][0]))
    assert len(frames) == FRAMES and frames[0].shape == (96, 96, 3)
    assert plain_images(webui) == baseline


def test_interrupt_mid_run_leaves_plain_txt2img_bit_identical(webui, motion_modules, baseline):
    import threading
    import time

    result = {}

    def long_run():
        result["response"] = webui.post("/sdapi/v1/txt2img", json={**BASE, "steps": 30, "alwayson_scripts": ad(
            model=motion_modules["v1"], format=["GIF"])})

    worker = threading.Thread(target=long_run)
    worker.start()
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until sampling has started
        progress = webui.get("/sdapi/v1/progress?skip_current_image=true").json()
        if progress.get("state", {}).get("sampling_step", 0) >= 1:
            break
        time.sleep(0.5)
    webui.post("/sdapi/v1/interrupt")
    worker.join(timeout=600)
    assert result["response"].status_code == 200
    assert plain_images(webui) == baseline


def test_checkpoint_switch_in_the_same_request(webui, motion_modules, baseline):
    ckpt_b = os.environ.get("SD_WEBUI_CKPT_B", "rand_sd15_b")
    names = [m["title"] for m in webui.get("/sdapi/v1/sd-models").json()]
    if not any(ckpt_b in n for n in names):
        pytest.skip(f"no second checkpoint named {ckpt_b}")
    out = run(webui, override_settings={"sd_model_checkpoint": ckpt_b},
              alwayson_scripts=ad(model=motion_modules["v2"], format=["GIF"]))
    info = json.loads(out["info"])["infotexts"][0]
    assert f"Model: {ckpt_b}" in info and "AnimateDiff:" in info
    assert len(gif_frames(decode(out["images"][0]))[0]) == FRAMES
    assert plain_images(webui) == baseline


def test_hires_fix_with_another_checkpoint(webui, motion_modules, baseline):
    """A1111 loads the hires checkpoint's weights into the same UNet, which
    keeps the motion module: a video, hires frames included. Forge loads
    another model inside the sampling, whose hires pass would run without the
    motion module: refused before the run, with 422 naming the field."""
    other = other_checkpoint(webui)
    payload = dict(enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", hr_second_pass_steps=1, denoising_strength=0.5,
                   hr_checkpoint_name=other, alwayson_scripts=ad(model=motion_modules["v2"], format=["GIF"]))
    frames = video_on_a1111_refused_on_forge(webui, payload, "'hr_checkpoint_name' must be 'Use same checkpoint'",
                                             "Hires checkpoint")
    if frames is not None:
        assert frames[0].shape == (96, 96, 3)
    assert plain_images(webui) == baseline


def test_refiner_with_another_checkpoint(webui, motion_modules, baseline):
    """The refiner switches checkpoints partway through the sampling. A1111
    loads the SD1.5 refiner's weights into the same UNet, which keeps the
    motion module: a video. Forge loads another model there, which would
    make the rest of the video without the motion module: refused."""
    payload = dict(refiner_checkpoint=other_checkpoint(webui), refiner_switch_at=0.5,
                   alwayson_scripts=ad(model=motion_modules["v2"], format=["GIF"]))
    video_on_a1111_refused_on_forge(webui, payload, "'refiner_checkpoint' must be 'None'", "Refiner: ")
    assert plain_images(webui) == baseline


def video_on_a1111_refused_on_forge(webui, payload, refusal, infotext_entry):
    """A request that loads another checkpoint partway. A1111: a whole video
    with `infotext_entry` in its infotext; its GIF frames. Forge: a 422 whose
    detail holds `refusal`, no images; None."""
    if webui.forge:
        out = run(webui, expect=422, **payload)
        assert refusal in out["detail"], out
        assert "images" not in out
        return None
    out = run(webui, **payload)
    frames, _, _ = gif_frames(decode(out["images"][0]))
    assert len(frames) == FRAMES
    assert infotext_entry in json.loads(out["info"])["infotexts"][0]
    return frames


def other_checkpoint(webui):
    """The harness's second SD1.5 checkpoint (SD_WEBUI_CKPT_B), by its title."""
    ckpt_b = os.environ.get("SD_WEBUI_CKPT_B", "rand_sd15_b")
    names = [m["title"] for m in webui.get("/sdapi/v1/sd-models").json()]
    other = next((n for n in names if ckpt_b in n), None)
    if other is None:
        pytest.skip(f"no second checkpoint named {ckpt_b}")
    return other


def frames_of(webui, motion_modules, **payload):
    out = run(webui, alwayson_scripts=ad(model=motion_modules["v1"], format=["GIF", "Frame"]), **payload)
    return [np.asarray(Image.open(io.BytesIO(decode(x))).convert("RGB"), dtype=np.float32)
            for x in out["images"][1:]]


def test_video_does_not_depend_on_webui_batching_options(webui, motion_modules):
    """With "Batch cond/uncond" off the WebUI sends cond and uncond rows to the
    UNet in separate calls; the video must be the same one as with a joint call
    (v1, whose GroupNorm spans the video, is the most sensitive), never two
    unrelated halves. Then the unpadded path: a prompt over 75 tokens with a
    shorter negative and padding off also splits the calls, and must give a
    whole video with no setting change."""
    before = webui.options()
    long_prompt = ", ".join(["a cat"] * 40)  # over 75 tokens; the negative is shorter
    payload = {"prompt": long_prompt, "negative_prompt": "a dog"}
    try:
        webui.set_options(batch_cond_uncond=True, pad_cond_uncond=True)
        together = frames_of(webui, motion_modules, **payload)
        webui.set_options(batch_cond_uncond=False, pad_cond_uncond=True)
        apart = frames_of(webui, motion_modules, **payload)
        webui.set_options(batch_cond_uncond=True, pad_cond_uncond=False)
        unpadded = frames_of(webui, motion_modules, **payload)
    finally:
        webui.set_options(batch_cond_uncond=before.get("batch_cond_uncond", True),
                          pad_cond_uncond=before.get("pad_cond_uncond", False))
    assert len(together) == len(apart) == len(unpadded) == FRAMES
    diff = np.mean([np.abs(a - b).mean() for a, b in zip(together, apart)])
    assert diff < 1.0, diff  # same video up to float rounding (8-bit pixels)
    assert all(np.isfinite(f).all() for f in unpadded)


def test_speed_options_work_together(webui, motion_modules):
    before = webui.options()
    try:
        webui.set_options(token_merging_ratio=0.5, s_min_uncond=2.0)
        frames = frames_of(webui, motion_modules)
        assert len(frames) == FRAMES
        for attention in ("Doggettx", "sdp-no-mem - scaled dot product without memory efficient attention",
                          "sub-quadratic", "V1 - Original optimization", "InvokeAI"):
            webui.set_options(cross_attention_optimization=attention)
            assert len(frames_of(webui, motion_modules)) == FRAMES
    finally:
        webui.set_options(token_merging_ratio=before.get("token_merging_ratio", 0),
                          s_min_uncond=before.get("s_min_uncond", 0),
                          cross_attention_optimization=before.get("cross_attention_optimization", "Automatic"))


def test_infotext_round_trip_restores_every_field(webui, motion_modules):
    """The infotext of a video, sent back as the API's `infotext` field (what
    PNG Info -> Send to txt2img does in the UI), gives the same video."""
    settings = dict(model=motion_modules["v3"], format=["GIF"], video_length=10, fps=4, loop_number=3,
                    closed_loop="N", batch_size=6, stride=2, overlap=1)
    first = run(webui, alwayson_scripts=ad(**settings))
    infotext = json.loads(first["info"])["infotexts"][0]
    r = webui.post("/sdapi/v1/txt2img", json={"infotext": infotext})
    assert r.status_code == 200, r.text[:2000]
    second = r.json()
    again = json.loads(second["info"])["infotexts"][0]
    entry = infotext[infotext.index('AnimateDiff: "'):].split('"')[1]
    assert entry in again  # every AnimateDiff field restored, resolved values included
    frames_a, durations_a, info_a = gif_frames(decode(first["images"][0]))
    frames_b, durations_b, info_b = gif_frames(decode(second["images"][0]))
    assert len(frames_b) == 10 and durations_b == durations_a and info_b.get("loop") == info_a.get("loop")
    assert all(np.array_equal(a, b) for a, b in zip(frames_a, frames_b))


def test_the_s3_secret_key_is_never_answered(webui, motion_modules):
    secret = "wJalrXUtnFEMI-K7MDENG-test-secret"
    settings_file = webui.flags()["ui_settings_file"]
    try:
        webui.set_options(animatediff_s3_secret_key=secret)
        r = webui.get("/sdapi/v1/options")
        assert r.status_code == 200 and secret not in r.text
        assert "sd_model_checkpoint" in r.json()  # the rest of the answer is intact
        # (With ControlNet installed the WebUI leaves extension settings out of this answer altogether.)
        answered = {k: v for k, v in r.json().items() if k.startswith("animatediff_s3")}
        if answered:
            assert answered["animatediff_s3_secret_key"] == "***"
            # Posting the answer back (as some clients do) keeps the stored secret.
            webui.set_options(**answered)
        with open(settings_file) as f:
            assert json.load(f)["animatediff_s3_secret_key"] == secret
    finally:
        webui.set_options(animatediff_s3_secret_key="")


def test_s3_credentials_reach_neither_the_log_nor_the_answer(webui, motion_modules, figures):
    """S3 on, pointed at a closed port: the upload fails and is reported.
    Neither the answers nor the WebUI's log (SD_WEBUI_LOG, read when set)
    hold the access or the secret key, also when the run fails with a
    traceback (the faults extension's write error, when installed)."""
    import uuid

    access, secret = f"AKIA{uuid.uuid4().hex[:16].upper()}", f"s3secret-{uuid.uuid4().hex}"
    log = os.environ.get("SD_WEBUI_LOG")
    start = os.path.getsize(log) if log else 0
    answers = []
    try:
        webui.set_options(animatediff_s3_enable=True, animatediff_s3_host="127.0.0.1", animatediff_s3_port="9",
                          animatediff_s3_access_key=access, animatediff_s3_secret_key=secret,
                          animatediff_s3_storge_bucket="videos")
        out = run(webui, alwayson_scripts=ad(model=motion_modules["v1"], format=["GIF", "TXT"]))
        answers.append(json.dumps(out))
        if webui.get("/animatediff-faults/v1/fired").status_code == 200:
            assert webui.post("/animatediff-faults/v1/arm?at=write&do=raise").status_code == 200
            failed = webui.post("/sdapi/v1/txt2img", json={**BASE, "alwayson_scripts": ad(model=motion_modules["v1"])})
            assert failed.status_code == 500
            answers.append(failed.text)
        answers.append(webui.get("/sdapi/v1/options").text)
    finally:
        webui.set_options(animatediff_s3_enable=False, animatediff_s3_host="", animatediff_s3_port="",
                          animatediff_s3_access_key="", animatediff_s3_secret_key="", animatediff_s3_storge_bucket="")
        webui.post("/animatediff-faults/v1/reset")
    for text in answers:
        assert secret not in text and access not in text
    if log:
        with open(log, encoding="utf-8", errors="replace") as f:
            f.seek(start)
            logged = f.read()
        assert "S3 upload" in logged  # the failure was logged, and with it no key
        assert secret not in logged and access not in logged
        figures.append(f"security: S3 keys absent from {len(answers)} answers and {len(logged)} bytes of WebUI log "
                       f"(upload failure and error traceback included)")


@pytest.mark.parametrize("value, says", [
    ("data:video/mp4;base64,@@not base64@@", "neither a path nor base64"),
    ("A" * 2047, "neither a path nor base64"),  # long enough to be data, but not whole base64
    ("data:video/mp4;base64," + base64.b64encode(b"\x00" * 3000).decode(), "video_source"),  # base64, not a video
])
def test_video_source_that_is_not_a_video_is_refused(webui, motion_modules, baseline, value, says):
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, "alwayson_scripts": ad(model=motion_modules["v1"],
                                                                              video_source=value)})
    assert r.status_code == 422, r.text[:500]
    assert r.json()["field"] == "video_source" and says in r.json()["detail"]
    status = webui.get("/animatediff/v1/status").json()
    assert status["decoded_frame_folders"] == 0 and not status["unet_injected"]
    assert plain_images(webui) == baseline


def test_switch_to_an_sdxl_checkpoint_with_an_sd15_module_is_refused_with_422(webui, motion_modules, baseline):
    """The checkpoint a request switches to is told from its file's header,
    before anything loads: the request is refused naming 'model' and the
    loaded checkpoint stays."""
    name = os.environ.get("SD_WEBUI_SDXL_CKPT", "rand_sdxl_small")
    title = next((m["title"] for m in webui.get("/sdapi/v1/sd-models").json() if m["title"].startswith(name)), None)
    if title is None:
        pytest.skip(f"no SDXL checkpoint {name!r} in the WebUI")
    _assert_switch_with_sd15_module_refused(webui, title, motion_modules["v1"])
    assert plain_images(webui) == baseline


def _assert_switch_with_sd15_module_refused(webui, title, module):
    loaded = webui.options()["sd_model_checkpoint"]
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, "override_settings": {"sd_model_checkpoint": title},
                                              "alwayson_scripts": ad(model=module)})
    assert r.status_code == 422, r.text[:500]
    assert r.json()["field"] == "model" and "checkpoint is SDXL" in r.json()["detail"]
    assert webui.options()["sd_model_checkpoint"] == loaded


def test_switch_to_a_pickled_sdxl_checkpoint_is_refused_with_422(webui, motion_modules, baseline):
    """A pickled (.ckpt) checkpoint is told from its tensor names too, read
    with weights_only and the tensors memory-mapped: a request switching to
    one with an SD1.5 module is refused before the WebUI loads it. The file
    only needs the names, so a small one stands in for a real SDXL .ckpt."""
    import torch

    models = webui.get("/sdapi/v1/sd-models").json()
    folder = os.path.dirname(models[0]["filename"]) if models else ""
    if not os.access(folder, os.W_OK):
        pytest.skip("the WebUI's checkpoint folder is not on this machine")
    path = os.path.join(folder, f"pickled_sdxl_{os.getpid()}.ckpt")
    names = ["conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
             "model.diffusion_model.input_blocks.0.0.weight"]
    torch.save({"state_dict": {k: torch.zeros(1) for k in names}}, path)
    try:
        webui.post("/sdapi/v1/refresh-checkpoints")
        title = next(m["title"] for m in webui.get("/sdapi/v1/sd-models").json()
                     if m["filename"] == path)
        _assert_switch_with_sd15_module_refused(webui, title, motion_modules["v1"])
    finally:
        os.remove(path)
        webui.post("/sdapi/v1/refresh-checkpoints")
    assert plain_images(webui) == baseline


class _WritesAMarker:
    """Unpickling this creates a file: proof that a pickle ran code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("case", ["truncated", "pickle_runs_code", "sd_checkpoint", "motion_lora", "zero_bytes",
                                  "symlink_out_of_the_folder"])
def test_model_files_that_cannot_be_used_are_refused(webui, motion_modules, baseline, tmp_path, case):
    """Files put into the motion-module folder: each is refused naming
    'model' before anything runs, a pickle's code never runs, and the plain
    txt2img afterwards is bit-identical."""
    import torch
    from safetensors.torch import save_file

    from motion_module.synthetic import random_lora

    folder = motion_modules.folder
    name = f"bad_{case}_{os.getpid()}" + (".ckpt" if case == "pickle_runs_code" else ".safetensors")
    path = os.path.join(folder, name)
    marker = tmp_path / "the_pickle_ran"
    with open(os.path.join(folder, motion_modules["v2"]), "rb") as f:
        good = f.read()
    if case == "truncated":
        with open(path, "wb") as f:
            f.write(good[:len(good) // 2])
    elif case == "pickle_runs_code":
        torch.save({"down_blocks.0.motion_modules.0.payload": _WritesAMarker(str(marker))}, path)
    elif case == "sd_checkpoint":
        save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
                   "cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.zeros(768)}, path)
    elif case == "motion_lora":
        save_file({k: v.half() for k, v in random_lora("motion", "a1111", rank=4, seed=1).items()}, path)
    elif case == "zero_bytes":
        open(path, "wb").close()
    else:
        outside = tmp_path / "outside.safetensors"
        outside.write_bytes(good)
        os.symlink(outside, path)
    try:
        r = webui.post("/sdapi/v1/txt2img", json={**BASE, "alwayson_scripts": ad(model=name)})
        assert r.status_code == 422, r.text[:500]
        assert r.json()["field"] == "model" and name in r.json()["detail"], r.text[:500]
        assert not marker.exists()
        models = {m["name"]: m for m in webui.get("/animatediff/v1/models").json()["models"]}
        assert models.get(name, {"kind": None})["kind"] is None  # never listed as usable
        assert not marker.exists()
    finally:
        os.remove(path)
    status = webui.get("/animatediff/v1/status").json()
    assert not status["unet_injected"]
    assert plain_images(webui) == baseline

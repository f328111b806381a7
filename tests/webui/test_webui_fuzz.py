"""Random AnimateDiff arguments over HTTP against a real WebUI (skipped
unless SD_WEBUI_URL is set): every request is answered 200 or 422 naming a
field, never a 5xx or a hang, and the WebUI's memory does not grow.

The argument sets come from the same strategies as the parser's property
tests (tests/test_hardening_inputs.py), plus request paths and images, and
prompts of travel keyframe lines and LoRA tags. Sets
the parser accepts are made cheap before sending (at most 4 frames, one
FreeInit iteration, no interpolation) so that a few hundred requests finish
in minutes; refused ones are sent as generated.
"""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motion_module.errors import ParamError
from motion_module.prompt_travel import parse as parse_travel
from motion_module.request.params import SPECS, from_dict
from test_hardening_inputs import keys, values
from webui_loras import ADAPTER, MOTION, MOTION_RESAVE

URL = os.environ.get("SD_WEBUI_URL", "").rstrip("/")
pytestmark = pytest.mark.skipif(not URL, reason="SD_WEBUI_URL is not set")
REQUESTS = int(os.environ.get("SD_WEBUI_FUZZ_REQUESTS", "300"))
BASE = {"prompt": "a cat", "negative_prompt": "a dog", "steps": 1, "width": 64, "height": 64, "seed": 1,
        "sampler_name": "Euler", "cfg_scale": 7}
PATHS = ["/nonexistent", "/etc", "/etc/passwd", "../../etc", "~", "", "a\x00b", "C:\\Windows", "x" * 5000,
         "data:video/mp4;base64,AAAA", "AAAA" * 400]

counts = {"sent": 0, "200": 0, "422": 0, "nan": 0}


def _jsonable(value):
    """The generated value as JSON can carry it (bytes become text; NaN stays, as Python's JSON writes it)."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _cheap(args):
    try:
        params = from_dict(args, warn=lambda msg: None)
    except ParamError:
        return args
    if not params.enable:
        return args
    return {**args, "video_length": min(params.video_length or 4, 4), "batch_size": min(params.batch_size, 4),
            "overlap": -1, "freeinit_iters": 1, "interp": "Off", "format": ["GIF"],
            "videos_per_batch": min(params.videos_per_batch, 2)}


@pytest.fixture(scope="module")
def rss(webui, motion_modules, loras):
    """The WebUI's resident memory, first after the warm-up runs, then every
    50 requests. The warm-up loads the checkpoint, the motion module and the
    three LoRA files the prompts below name (a motion LoRA in both namings,
    a v3 adapter), so that the WebUI's and our caches of LoRA files, each
    bounded, are full before the first reading: the bound is on growth."""
    tags = "".join(f"<lora:{name}:0.5>" for name in (MOTION, MOTION_RESAVE, ADAPTER))
    for prompt in (f"a cat {tags}", "a cat"):
        r = webui.post("/sdapi/v1/txt2img", json={**BASE, "prompt": prompt, "alwayson_scripts": {"AnimateDiff": {
            "args": [{"enable": True, "model": motion_modules["v2"], "video_length": 4, "batch_size": 4,
                      "format": ["GIF"]}]}}})
        assert r.status_code == 200, r.text[:500]
    return [webui.get("/sdapi/v1/memory").json()["ram"]["used"]]


paths = st.dictionaries(st.sampled_from(["video_source", "video_path", "mask_path", "model", "request_id",
                                         "last_frame"]), st.sampled_from(PATHS), max_size=2)


@settings(max_examples=REQUESTS, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(body=st.dictionaries(keys, values, max_size=8), extra=paths)
def test_random_arguments_get_200_or_a_422_naming_a_field(webui, motion_modules, rss, body, extra):
    args = _cheap(_jsonable({**body, **extra, "enable": True, "model": body.get("model", motion_modules["v2"])}))
    # Python's JSON writer: NaN and Infinity included, as some clients send them.
    body = json.dumps({**BASE, "alwayson_scripts": {"AnimateDiff": {"args": [args]}}})
    r = webui.post("/sdapi/v1/txt2img", data=body, headers={"content-type": "application/json"})
    counts["sent"] += 1
    assert r.status_code in (200, 422), (r.status_code, args, r.text[:500])
    counts[str(r.status_code)] += 1
    if r.status_code == 422:
        assert r.json()["field"] in set(SPECS) | {"args", "prompt"}, r.text[:500]
    if counts["sent"] % 50 == 0:
        rss.append(webui.get("/sdapi/v1/memory").json()["ram"]["used"])


def _near_valid(name):
    """Values around a parameter's range: mostly valid, some just outside it."""
    kind = SPECS[name].kind
    if hasattr(kind, "choices"):
        choice = st.sampled_from([*kind.choices, "bogus"])
        return st.lists(choice, min_size=1, max_size=3) if type(kind).__name__ == "ChoiceList" else choice
    if hasattr(kind, "low") and isinstance(kind.low, int):
        return st.integers(kind.low - 2, kind.high + 2)
    if hasattr(kind, "low"):
        return st.floats(kind.low - 0.5, kind.high + 0.5)
    if type(kind).__name__ == "Bool":
        return st.booleans()
    return st.sampled_from(["", "ok-id"] if name == "request_id" else [""])  # paths are fuzzed in the test above


near_valid = st.fixed_dictionaries({}, optional={name: _near_valid(name) for name in SPECS
                                                 if name not in ("enable", "model", "video_source", "last_frame")})


@settings(max_examples=REQUESTS // 3, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(body=near_valid)
def test_arguments_around_the_ranges_get_200_or_a_422_naming_a_field(webui, motion_modules, rss, body):
    test_random_arguments_get_200_or_a_422_naming_a_field.hypothesis.inner_test(
        webui=webui, motion_modules=motion_modules, rss=rss, body=body, extra={})


# Prompts of travel keyframe lines and LoRA tags. The words are ones the
# random test checkpoint encodes without NaNs; the rest is syntax.
words = st.sampled_from(["a cat", "a dog"])
keyframes = st.builds("{}: {}".format, st.one_of(st.integers(-5, 40), st.sampled_from(["x", "1.5", "", "9" * 12])),
                      words)
tags = st.builds("<lora:{}:{}>".format, st.sampled_from([MOTION, MOTION_RESAVE, ADAPTER, "no_such_lora", "../up", ""]),
                 st.one_of(st.floats(-1.5, 1.5).map("{:.2f}".format), st.sampled_from(["", "nan", "inf", "x", "1:2"])))
prompts = st.lists(st.one_of(keyframes, tags, words), min_size=1, max_size=6).map("\n".join)


@settings(max_examples=REQUESTS // 3, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(prompt=prompts, interp=st.sampled_from(["", "lerp", "slerp", "bogus"]))
def test_travel_prompts_and_lora_tags_get_200_or_a_422_naming_the_prompt(webui, motion_modules, loras, rss, prompt,
                                                                         interp):
    args = {"enable": True, "model": motion_modules["v2"], "video_length": 4, "batch_size": 4, "format": ["GIF"],
            "prompt_interp": interp}
    r = webui.post("/sdapi/v1/txt2img", json={**BASE, "prompt": prompt,
                                              "alwayson_scripts": {"AnimateDiff": {"args": [args]}}})
    counts["sent"] += 1
    if r.status_code == 500 and "NansException" in r.text:
        # The random checkpoint's text encoder overflows on some texts (":" alone, for one): the
        # WebUI's own NaN check, which one of the frames' prompts trips without AnimateDiff too.
        travel = parse_travel(prompt, 4)
        texts = dict.fromkeys(travel.frame_prompts(4) if travel else [prompt])
        plain = [webui.post("/sdapi/v1/txt2img", json={**BASE, "prompt": text}) for text in texts]
        assert any(p.status_code == 500 and "NansException" in p.text for p in plain), (prompt, list(texts))
        counts["nan"] += 1
        return
    assert r.status_code in (200, 422), (r.status_code, prompt, r.text[:500])
    counts[str(r.status_code)] += 1
    if r.status_code == 422:
        assert r.json()["field"] in ("prompt", "prompt_interp"), r.text[:500]


def test_zz_memory_did_not_grow(webui, rss, figures):
    rss.append(webui.get("/sdapi/v1/memory").json()["ram"]["used"])
    growth = (rss[-1] - rss[0]) / rss[0]
    figures.append(f"fuzz: {counts['sent']} random requests: {counts['200']} ran (200), {counts['422']} refused "
                   f"(422 naming a field), {counts['nan']} stopped by the WebUI's NaN check on the random checkpoint's "
                   f"text encoder (as without AnimateDiff), 0 other; WebUI RSS {rss[0] / 2**20:.0f} MiB after the "
                   f"warm-up runs, {rss[-1] / 2**20:.0f} MiB after ({growth * 100:+.1f}%)")
    assert counts["sent"] >= REQUESTS * 1.5
    assert growth < 0.05, rss


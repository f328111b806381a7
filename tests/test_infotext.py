import json

import pytest


from motion_module.request.infotext import (
    INFOTEXT_KEY,
    escape_value,
    format_infotext,
    parse_infotext,
    paste_field_names,
    paste_fields,
    sanitize_schedule,
    short_hash,
    split_pairs,
    unescape_value,
)
from motion_module.request.params import AnimateDiffParams, ParamError

HASH = "69ED0F5FEF5F8A1C0F0E1D2C3B4A59687766554433221100FFEEDDCCBBAA9988"


class Warnings(list):
    def __call__(self, message):
        self.append(message)


def enabled(**kw):
    kw.setdefault("model", "mm_sd_v15_v2.ckpt")
    return AnimateDiffParams(enable=True, **kw)


def write(params, *, img2img=False, source_frames=None, mm_hash=HASH, schedule="linear 0.00085-0.012"):
    return format_infotext(params, params.resolve(source_frames), mm_hash=mm_hash,
                           schedule=schedule, is_img2img=img2img)


def keys(text):
    return [key for key, _ in split_pairs(text)]


# --- writing ------------------------------------------------------------------


def test_infotext_key():
    assert INFOTEXT_KEY == "AnimateDiff"


def test_txt2img_example():
    assert write(enabled()) == (
        "enable: True, model: mm_sd_v15_v2.ckpt, video_length: 16, fps: 8, loop_number: 0, "
        "closed_loop: R-P, batch_size: 16, stride: 1, overlap: 0, interp: Off, interp_x: 10, "
        "mm_hash: 69ed0f5f, schedule: linear 0.00085-0.012"
    )


def test_img2img_adds_latent_keys_and_request_id_when_set():
    text = write(enabled(request_id="job-1", latent_power=1.5, latent_scale_last=16), img2img=True)
    assert keys(text) == [
        "enable", "model", "video_length", "fps", "loop_number", "closed_loop", "batch_size",
        "stride", "overlap", "interp", "interp_x", "request_id", "mm_hash", "schedule",
        "latent_power", "latent_scale", "latent_power_last", "latent_scale_last",
    ]
    assert "latent_power: 1.5" in text and "latent_scale_last: 16.0" in text
    assert "request_id" not in write(enabled())


def test_resolved_values_are_written():
    text = write(enabled(video_length=0, batch_size=8, overlap=-1))
    assert "video_length: 8" in text and "overlap: 0" in text
    assert "video_length: 40" in write(enabled(video_length=0), source_frames=40)
    # What ran: an 8-frame clip is one pass of 8 frames; stride 9 on 32 frames runs 2 levels.
    short = write(enabled(video_length=8, batch_size=16, overlap=2))
    assert "batch_size: 8" in short and "overlap: 0" in short and "stride: 1" in short
    long = write(enabled(video_length=32, batch_size=16, stride=9))
    assert "batch_size: 16" in long and "overlap: 4" in long and "stride: 2" in long


def test_mm_hash_short_and_optional():
    assert short_hash(HASH) == "69ed0f5f"
    assert short_hash("abc") == "abc"
    assert short_hash(None) == "" and short_hash("") == ""
    with pytest.raises(ValueError):
        short_hash("not-hex")
    assert "mm_hash" not in keys(write(enabled(), mm_hash=""))


def test_schedule_is_sanitised():
    assert sanitize_schedule("linear 0.00085-0.012") == "linear 0.00085-0.012"
    dirty = 'scaled: 0.00085, 0.012 "x"\n\\%'
    clean = sanitize_schedule(dirty)
    assert ", " not in clean and ": " not in clean and '"' not in clean
    assert clean == "scaled 0.00085 0.012 x"
    assert len(sanitize_schedule("x" * 500)) <= 64
    text = write(enabled(), schedule=dirty)
    assert parse_infotext(text)["schedule"] == clean
    assert "schedule" not in keys(write(enabled(), schedule=""))


# --- escaping -------------------------------------------------------------------

HOSTILE_NAMES = [
    "my, model.ckpt",
    "a: b.ckpt",
    'quo"ted".ckpt',
    "back\\slash.ckpt",
    "100%.ckpt",
    "literal%2C.ckpt",
    " leading and trailing ",
    "   ",
    "new\nline\r\t.ckpt",
    "sub/dir/mm.safetensors",
    "日本語, モデル: v2.ckpt",
    ", : , :",
    "",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_escape_round_trip(name):
    assert unescape_value(escape_value(name)) == name


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_model_names_round_trip(name):
    text = write(enabled(model=name))
    assert parse_infotext(text)["model"] == name
    assert keys(text)[:3] == ["enable", "model", "video_length"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_value_survives_webui_outer_quoting(name):
    # The WebUI JSON-quotes a value containing ',', ':' or a newline. Ours
    # never contains a quote, backslash or newline, so that quoting has
    # nothing to escape and any version of its reader gets the text back.
    text = write(enabled(model=name, request_id="r, 1"), img2img=True)
    assert '"' not in text and "\\" not in text and "\n" not in text
    quoted = json.dumps(text, ensure_ascii=False)
    assert quoted == f'"{text}"'
    assert parse_infotext(json.loads(quoted))["model"] == name
    # A value handed over still wrapped in the outer quotes is accepted too.
    assert parse_infotext(quoted)["model"] == name


def test_non_ascii_stays_readable():
    assert "日本語" in escape_value("日本語.ckpt")


def test_hypothesis_round_trip():
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    @hypothesis.given(st.text())
    @hypothesis.settings(max_examples=300, deadline=None)
    def check(name):
        assert unescape_value(escape_value(name)) == name
        assert parse_infotext(write(enabled(model=name)))["model"] == name

    check()


# --- round trip through paste ------------------------------------------------------


ROUND_TRIP_CASES = [
    (dict(), None, False),
    (dict(video_length=0, batch_size=8, overlap=-1), None, False),
    (dict(video_length=8, batch_size=16, closed_loop="A"), None, False),
    (dict(video_length=48, batch_size=16, stride=3, overlap=6, closed_loop="N", fps=24, loop_number=3), None, False),
    (dict(video_length=0, closed_loop="R+P", interp="FILM", interp_x=4), 37, False),
    (dict(video_length=10, batch_size=16, overlap=12, interp="Linear"), None, True),
    (dict(latent_power=2.5, latent_scale=64, latent_power_last=0.1, latent_scale_last=128, request_id="x"), None, True),
    (dict(model="odd, name: \"v2\".ckpt", batch_size=1), None, True),
]


@pytest.mark.parametrize("kw, source_frames, img2img", ROUND_TRIP_CASES)
def test_params_infotext_paste_resolve_round_trip(kw, source_frames, img2img):
    original = enabled(**kw)
    resolved = original.resolve(source_frames)
    text = format_infotext(original, resolved, mm_hash=HASH, schedule="linear", is_img2img=img2img)
    pasted = paste_fields(text, img2img)
    rebuilt = AnimateDiffParams(**pasted, format=original.format)
    assert rebuilt.resolve() == resolved
    assert rebuilt.model == original.model
    if img2img:
        for key in ("latent_power", "latent_scale", "latent_power_last", "latent_scale_last"):
            assert getattr(rebuilt, key) == getattr(original, key)


def test_parsed_values_are_typed():
    parsed = parse_infotext(write(enabled(), img2img=True))
    assert parsed["enable"] is True
    assert isinstance(parsed["video_length"], int) and isinstance(parsed["latent_scale"], float)
    assert parsed["closed_loop"] == "R-P" and parsed["mm_hash"] == "69ed0f5f"


# --- reading other writers' infotexts ----------------------------------------------


REFERENCE_V1 = (
    "enable: True, model: mm_sd_v15_v2.ckpt, video_length: 16, fps: 8, loop_number: 0, "
    "closed_loop: R-P, batch_size: 16, stride: 1, overlap: 4, interp: Off, interp_x: 10, "
    "mm_hash: 69ed0f5f"
)
REFERENCE_V1_IMG2IMG = (
    "enable: True, model: mm_sd_v15_v2.ckpt, video_length: 24, fps: 12, loop_number: 0, "
    "closed_loop: A, batch_size: 16, stride: 2, overlap: 4, interp: FILM, interp_x: 10, "
    "request_id: abc, mm_hash: 69ed0f5f, latent_power: 1, latent_scale: 32, "
    "latent_power_last: 1, latent_scale_last: 32"
)
REFERENCE_V2 = (
    "model: mm_sd15_v3.safetensors, video_length: 16, fps: 8, loop_number: 0, closed_loop: R-P, "
    "batch_size: 16, stride: 1, overlap: 4, interp: Off, interp_x: 10, freeinit_enable: False, "
    "version: v2.0.0-a, mm_hash: 7a7a7a7a"
)


def test_reference_v1_parses():
    parsed = parse_infotext(REFERENCE_V1)
    assert parsed["enable"] is True and parsed["model"] == "mm_sd_v15_v2.ckpt"
    assert parsed["video_length"] == 16 and parsed["overlap"] == 4 and parsed["mm_hash"] == "69ed0f5f"


def test_reference_v1_img2img_paste():
    fields = paste_fields(REFERENCE_V1_IMG2IMG, is_img2img=True)
    assert fields["latent_power"] == 1.0 and isinstance(fields["latent_power"], float)
    assert fields["closed_loop"] == "A" and fields["interp"] == "FILM" and fields["stride"] == 2
    assert "request_id" not in fields
    txt2img = paste_fields(REFERENCE_V1_IMG2IMG, is_img2img=False)
    assert not any(key.startswith("latent_") for key in txt2img)


def test_reference_v2_without_enable():
    parsed = parse_infotext(REFERENCE_V2)
    assert parsed["freeinit_enable"] is False and parsed["version"] == "v2.0.0-a"
    assert "enable" not in parsed
    fields = paste_fields(REFERENCE_V2, is_img2img=False)
    assert fields["enable"] is True and fields["model"] == "mm_sd15_v3.safetensors"
    assert fields["freeinit_enable"] is False and "version" not in fields
    AnimateDiffParams(**fields).resolve()


def test_unknown_and_missing_keys():
    parsed = parse_infotext("fps: 12, future_key: some value, bare_flag")
    assert parsed == {"fps": 12, "future_key": "some value", "bare_flag": ""}
    assert paste_fields("fps: 12, future_key: x", False) == {"fps": 12, "enable": True}


def test_reference_model_name_with_colon():
    assert parse_infotext("model: a:b.ckpt, fps: 8")["model"] == "a:b.ckpt"


def test_unreadable_known_value_is_dropped_with_warning():
    w = Warnings()
    parsed = parse_infotext("enable: True, fps: abc, closed_loop: X, stride: 2", warn=w)
    assert parsed == {"enable": True, "stride": 2}
    assert len(w) == 2 and "fps" in w[0] and "closed_loop" in w[1]


def test_out_of_range_values_are_parsed_but_rejected_when_used():
    fields = paste_fields("enable: True, model: m.ckpt, fps: 0", False)
    assert fields["fps"] == 0
    with pytest.raises(ParamError, match="'fps'"):
        AnimateDiffParams(**fields)


def test_empty_values():
    assert parse_infotext("") == {} and parse_infotext(None) == {}
    assert paste_fields("", False) == {} and paste_fields(None, True) == {}


def test_paste_field_names():
    assert paste_field_names(False) == (
        "model", "enable", "video_length", "fps", "loop_number", "closed_loop",
        "batch_size", "stride", "overlap", "interp", "interp_x", "prompt_interp", "freenoise", "motion_scale",
        "freeinit_enable", "freeinit_filter", "freeinit_ds", "freeinit_dt", "freeinit_iters", "freeinit_fast",
        "deepcache_interval", "deepcache_depth", "deepcache_early", "videos_per_batch",
    )
    assert paste_field_names(True)[-17:-13] == (
        "latent_power", "latent_scale", "latent_power_last", "latent_scale_last",
    )
    for name in ("format", "request_id", "video_source", "video_path", "last_frame"):
        assert name not in paste_field_names(True)


def test_format_and_request_id_are_never_pasted():
    text = write(enabled(format=["MP4"], request_id="secret"), img2img=True)
    fields = paste_fields(text, True)
    assert "format" not in fields and "request_id" not in fields
    assert parse_infotext(text)["request_id"] == "secret"


def test_travel_and_freenoise_options_are_written_when_set_and_pasted():
    text = write(enabled(prompt_interp="lerp", freenoise=True, video_length=32))
    assert "prompt_interp: lerp" in text and "freenoise: True" in text
    assert paste_fields(text, False)["prompt_interp"] == "lerp" and paste_fields(text, False)["freenoise"] is True
    plain = write(enabled())
    assert "prompt_interp" not in plain and "freenoise" not in plain


@pytest.mark.parametrize("scale", [0.0, 0.5, 2.0])
def test_motion_scale_is_written_when_not_one_and_pasted(scale):
    text = write(enabled(motion_scale=scale))
    assert f"motion_scale: {scale!r}" in text
    assert paste_fields(text, False)["motion_scale"] == scale
    assert "motion_scale" not in write(enabled(motion_scale=1.0))


def test_videos_per_batch_is_written_when_not_one_and_pasted():
    text = write(enabled(videos_per_batch=3))
    assert "videos_per_batch: 3" in text
    assert paste_fields(text, False)["videos_per_batch"] == 3
    assert paste_fields(text, True)["videos_per_batch"] == 3
    plain = write(enabled())
    assert "videos_per_batch" not in plain and "videos_per_batch" not in paste_fields(plain, False)
    # Pasted values are range-checked when used, as every field.
    with pytest.raises(ParamError, match="'videos_per_batch'"):
        AnimateDiffParams(**paste_fields("enable: True, videos_per_batch: 99", False))

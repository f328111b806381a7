import dataclasses
import json
import pathlib
import subprocess
import sys

import pytest


from motion_module.request.params import (
    PARAM_ORDER,
    AnimateDiffParams,
    ParamError,
    ResolvedParams,
    from_dict,
    from_script_args,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]

UI_DEFAULTS = [getattr(AnimateDiffParams(), name) for name in PARAM_ORDER]

README_API_EXAMPLE = {
    "model": "mm_sd_v15_v2.ckpt",
    "format": ["GIF"],
    "enable": True,
    "video_length": 16,
    "fps": 8,
    "loop_number": 0,
    "closed_loop": "R+P",
    "batch_size": 16,
    "stride": 1,
    "overlap": -1,
    "interp": "Off",
    "interp_x": 10,
    "video_source": "path/to/video.mp4",
    "video_path": "path/to/frames",
    "latent_power": 1,
    "latent_scale": 32,
    "last_frame": None,
    "latent_power_last": 1,
    "latent_scale_last": 32,
    "request_id": "",
}


class Warnings(list):
    def __call__(self, message):
        self.append(message)


def enabled(**kw):
    return AnimateDiffParams(enable=True, model="mm.ckpt", **kw)


# --- the dataclass itself ---------------------------------------------------


def test_fields_are_exactly_the_api_keys_in_positional_order():
    assert tuple(f.name for f in dataclasses.fields(AnimateDiffParams)) == PARAM_ORDER


def test_defaults():
    p = AnimateDiffParams()
    assert p.to_dict() == {
        "model": "", "format": ["GIF", "PNG"], "enable": False, "video_length": 0, "fps": 8,
        "loop_number": 0, "closed_loop": "R-P", "batch_size": 16, "stride": 1, "overlap": -1,
        "interp": "Off", "interp_x": 10, "video_source": None, "video_path": "",
        "latent_power": 1.0, "latent_scale": 32.0, "latent_power_last": 1.0,
        "latent_scale_last": 32.0, "request_id": "", "prompt_interp": "", "freenoise": False,
        "motion_scale": 1.0, "freeinit_enable": False, "freeinit_filter": "butterworth", "freeinit_ds": 0.25,
        "freeinit_dt": 0.25, "freeinit_iters": 3, "freeinit_fast": False, "mask_path": "",
        "deepcache_interval": 1, "deepcache_depth": 0, "deepcache_early": 0.0, "videos_per_batch": 1,
    }
    assert p.last_frame is None


def test_default_format_lists_are_not_shared():
    a, b = AnimateDiffParams(), AnimateDiffParams()
    a.format.append("MP4")
    assert b.format == ["GIF", "PNG"]


def test_param_error_is_a_value_error_with_field():
    with pytest.raises(ValueError) as info:
        enabled(fps=0)
    assert isinstance(info.value, ParamError)
    assert info.value.field == "fps"


# --- error messages -----------------------------------------------------------


def test_int_range_message():
    with pytest.raises(ParamError, match=r"^AnimateDiff: 'fps' must be an integer between 1 and 240, got 0$"):
        enabled(fps=0)


def test_choice_message():
    with pytest.raises(ParamError, match=r"^AnimateDiff: 'closed_loop' must be one of N, R-P, R\+P, A, got 'X'$"):
        enabled(closed_loop="X")


def test_long_values_are_shortened_in_messages():
    with pytest.raises(ParamError) as info:
        enabled(fps="9" * 500 + "x")
    assert len(str(info.value)) < 200


# --- type coercion --------------------------------------------------------------


@pytest.mark.parametrize("value", [16, 16.0, "16", " 16 ", "16.0"])
def test_int_fields_accept_integral_values(value):
    assert enabled(batch_size=value).batch_size == 16


@pytest.mark.parametrize("value", [16.5, "16.5", True, False, None, [16], "abc", float("nan"), float("inf"), ""])
def test_int_fields_reject_non_integers(value):
    with pytest.raises(ParamError) as info:
        enabled(batch_size=value)
    assert info.value.field == "batch_size"


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), (1, True), (0, False), ("true", True), ("FALSE", False),
    ("True", True), ("1", True), ("0", False),
])
def test_bool_fields(value, expected):
    assert AnimateDiffParams(enable=value, model="m.ckpt").enable is expected


@pytest.mark.parametrize("value", ["yes", "maybe", 2, None, [], 0.5])
def test_bool_rejects_everything_else(value):
    with pytest.raises(ParamError) as info:
        AnimateDiffParams(enable=value)
    assert info.value.field == "enable"


@pytest.mark.parametrize("value, expected", [(2, 2.0), (1.5, 1.5), ("1.5", 1.5), (" 3 ", 3.0)])
def test_float_fields_accept_numbers(value, expected):
    p = enabled(latent_power=value)
    assert p.latent_power == expected and isinstance(p.latent_power, float)


@pytest.mark.parametrize("value", [True, None, "x", float("nan"), float("inf"), [1.0]])
def test_float_fields_reject_non_numbers(value):
    with pytest.raises(ParamError) as info:
        enabled(latent_scale_last=value)
    assert info.value.field == "latent_scale_last"


def test_str_fields():
    assert enabled().model == "mm.ckpt"
    assert AnimateDiffParams(enable=True, model=None).model == ""
    assert enabled(video_path=None).video_path == ""
    with pytest.raises(ParamError, match="'model'"):
        AnimateDiffParams(enable=True, model=3)
    with pytest.raises(ParamError, match="'video_path'"):
        enabled(video_path=["a"])


def test_video_source():
    assert enabled(video_source="").video_source is None
    assert enabled(video_source=pathlib.Path("v.mp4")).video_source == "v.mp4"
    with pytest.raises(ParamError, match="'video_source'"):
        enabled(video_source=3)


def test_last_frame_accepts_images_and_base64():
    Image = pytest.importorskip("PIL.Image")
    img = Image.new("RGB", (8, 8))
    assert enabled(last_frame=img).last_frame is img
    assert enabled(last_frame="aGVsbG8=").last_frame == "aGVsbG8="
    assert enabled(last_frame="  ").last_frame is None
    with pytest.raises(ParamError, match="'last_frame'"):
        enabled(last_frame=5)


# --- ranges ---------------------------------------------------------------------


@pytest.mark.parametrize("name, low, high", [
    ("video_length", 0, 10000), ("fps", 1, 240), ("loop_number", 0, 10000),
    ("batch_size", 1, 64), ("stride", 1, 16), ("interp_x", 2, 100),
])
def test_int_ranges(name, low, high):
    assert getattr(enabled(**{name: low}), name) == low
    assert getattr(enabled(**{name: high}), name) == high
    for bad in (low - 1, high + 1):
        with pytest.raises(ParamError) as info:
            enabled(**{name: bad})
        assert info.value.field == name
        assert f"between {low} and {high}" in str(info.value)


@pytest.mark.parametrize("name", ["latent_power", "latent_power_last"])
def test_latent_power_range(name):
    enabled(**{name: 0.1})
    enabled(**{name: 10})
    for bad in (0.05, 10.5):
        with pytest.raises(ParamError, match=f"'{name}' must be a number between 0.1 and 10"):
            enabled(**{name: bad})


@pytest.mark.parametrize("name", ["latent_scale", "latent_scale_last"])
def test_latent_scale_range(name):
    enabled(**{name: 1})
    enabled(**{name: 128})
    for bad in (0.5, 129):
        with pytest.raises(ParamError, match=f"'{name}'"):
            enabled(**{name: bad})


def test_overlap_must_be_below_batch_size():
    assert enabled(batch_size=16, overlap=15).overlap == 15
    assert enabled(overlap=-1).overlap == -1
    with pytest.raises(ParamError, match=r"'overlap' must be an integer between -1 and 15") as info:
        enabled(batch_size=16, overlap=16)
    assert info.value.field == "overlap"
    # Both ends name the same range, the one that depends on the context.
    with pytest.raises(ParamError, match=r"'overlap' must be an integer between -1 and 15 \(context batch size - 1\)"):
        enabled(overlap=-2)
    with pytest.raises(ParamError, match=r"between -1 and 7 \(context batch size - 1\), got 100"):
        enabled(batch_size=8, overlap=100)


def test_request_id_rules():
    assert enabled(request_id="a" * 128).request_id == "a" * 128
    assert enabled(request_id="job 42_x.y-z").request_id == "job 42_x.y-z"
    for bad in ("a" * 129, "../x", "a/b", "a\\b", "a:b", "a\nb", "a\x00b"):
        with pytest.raises(ParamError) as info:
            enabled(request_id=bad)
        assert info.value.field == "request_id"


# --- formats ----------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("GIF", ["GIF"]),
    ("gif", ["GIF"]),
    (["frame", "gif"], ["GIF", "Frame"]),
    ("GIF, mp4", ["GIF", "MP4"]),
    (("webm", "Webp", "WEBM"), ["WEBP", "WEBM"]),
    ({"PNG", "txt"}, ["PNG", "TXT"]),
])
def test_format_aliases(value, expected):
    assert enabled(format=value).format == expected


@pytest.mark.parametrize("value", [[], ["TXT"], ["Frame", "TXT"], "", ["GIF", "AVI"], 3, ["GIF", 3]])
def test_format_needs_an_output(value):
    with pytest.raises(ParamError) as info:
        enabled(format=value)
    assert info.value.field == "format"


def test_closed_loop_and_interp_case_insensitive():
    p = enabled(closed_loop="r+p", interp="film")
    assert (p.closed_loop, p.interp) == ("R+P", "FILM")
    assert enabled(closed_loop="n", interp="LINEAR").interp == "Linear"


# --- disabled params never block a generation ----------------------------------


def test_disabled_params_do_not_raise_and_fall_back_to_defaults():
    p = AnimateDiffParams(enable=False, fps="abc", format=["AVI"], closed_loop="X", overlap=99, batch_size=True)
    assert p.enable is False
    assert p.fps == 8 and p.format == ["GIF", "PNG"] and p.closed_loop == "R-P"
    assert p.batch_size == 16
    assert p.overlap == 99  # right type: kept; range is not checked while disabled


def test_disabled_params_still_coerce_types():
    p = AnimateDiffParams(enable=False, fps="12", batch_size=8.0, format="mp4")
    assert (p.fps, p.batch_size, p.format) == (12, 8, ["MP4"])


def test_validate_after_mutation():
    p = enabled()
    p.fps = "24"
    assert p.validate().fps == 24
    p.fps = 0
    with pytest.raises(ParamError):
        p.validate()


# --- from_dict ---------------------------------------------------------------------


def test_from_dict_readme_example():
    w = Warnings()
    p = from_dict(README_API_EXAMPLE, warn=w)
    assert w == []
    assert p.enable and p.model == "mm_sd_v15_v2.ckpt" and p.closed_loop == "R+P"
    assert p.format == ["GIF"] and p.video_source == "path/to/video.mp4"
    assert p.latent_scale == 32.0 and isinstance(p.latent_scale, float)


def test_from_dict_unknown_keys_warn_once():
    w = Warnings()
    p = from_dict({"enable": True, "model": "m.ckpt", "version": "v2", "video_default": "", "is_i2i_batch": False},
                  warn=w)
    assert p.enable
    assert len(w) == 1
    for key in ("version", "video_default", "is_i2i_batch"):
        assert key in w[0]


def test_from_dict_omitted_keys_take_defaults():
    p = from_dict({"enable": True, "model": "m.ckpt"})
    assert p == AnimateDiffParams(enable=True, model="m.ckpt")


def test_from_dict_key_aliases_and_exact_key_wins():
    w = Warnings()
    p = from_dict({"Enable": True, "motion_module": "m.ckpt", "video-length": 24, "Context Batch Size": 8,
                   "fps": 12, "FPS": 30}, warn=w)
    assert (p.enable, p.model, p.video_length, p.batch_size, p.fps) == (True, "m.ckpt", 24, 8, 12)
    assert w == []


def test_from_dict_without_enable_warns():
    w = Warnings()
    p = from_dict({"model": "m.ckpt", "video_length": 16}, warn=w)
    assert not p.enable
    assert any("enable" in m for m in w)


def test_from_dict_rejects_non_mapping():
    with pytest.raises(ParamError):
        from_dict(["enable"])


def test_from_dict_error_names_field():
    with pytest.raises(ParamError) as info:
        from_dict({"enable": True, "model": "m.ckpt", "stride": 0})
    assert info.value.field == "stride"


def test_to_dict_round_trips_and_is_json():
    p = enabled(format=["mp4", "frame"], closed_loop="A", video_length=32, request_id="r1", last_frame="aGk=")
    d = p.to_dict()
    assert "last_frame" not in d
    json.dumps(d)
    assert from_dict(d) == dataclasses.replace(p, last_frame=None)


# --- from_script_args ------------------------------------------------------------


def test_script_args_empty():
    assert from_script_args([]) == AnimateDiffParams()
    assert from_script_args(None) == AnimateDiffParams()


def test_script_args_dict_in_first_slot_ignores_the_rest():
    args = [dict(README_API_EXAMPLE)] + UI_DEFAULTS[1:]
    assert from_script_args(args) == from_dict(README_API_EXAMPLE)


def test_script_args_params_object_is_revalidated_copy():
    original = enabled(fps=12)
    got = from_script_args([original])
    assert got == original and got is not original
    original.fps = 0
    with pytest.raises(ParamError):
        from_script_args([original])


def test_webuiapi_false_shorthand_never_raises():
    assert from_script_args([False]) == AnimateDiffParams()
    got = from_script_args([False] + UI_DEFAULTS[1:])
    assert got.enable is False
    # Whatever the other UI slots hold, a disabled run is not blocked.
    junk = [False, ["AVI"], "x", "y", None, [], {}, 5, object(), 99, 3, "z"]
    assert from_script_args(junk).enable is False


def test_bool_first_slot_is_enable_and_rest_positional():
    args = [True] + UI_DEFAULTS[1:]
    args[PARAM_ORDER.index("fps")] = 12
    args[PARAM_ORDER.index("enable")] = False  # UI default in the enable slot is ignored
    p = from_script_args(args)
    assert p.enable is True and p.fps == 12 and p.model == ""


def test_positional_full_list_with_gradio_floats():
    values = dict(zip(PARAM_ORDER, UI_DEFAULTS))
    values.update(model="mm.ckpt", enable=True, video_length=24.0, fps=12.0, batch_size=16.0, overlap=-1.0)
    p = from_script_args([values[name] for name in PARAM_ORDER])
    assert (p.model, p.enable, p.video_length, p.fps) == ("mm.ckpt", True, 24, 12)
    assert isinstance(p.video_length, int)


def test_positional_short_and_long_lists():
    p = from_script_args(["mm.ckpt", ["GIF"], True, 8])
    assert (p.model, p.format, p.enable, p.video_length, p.fps) == ("mm.ckpt", ["GIF"], True, 8, 8)
    w = Warnings()
    p = from_script_args(UI_DEFAULTS + ["extra", 1], warn=w)
    assert p == AnimateDiffParams()
    assert len(w) == 1 and "2 extra" in w[0]


def test_positional_none_model():
    assert from_script_args([None]).model == ""


# --- resolve ----------------------------------------------------------------------


def test_resolve_defaults():
    r = enabled().resolve()
    assert r == ResolvedParams(
        video_length=16, context_length=16, overlap=0, stride=1, closed_loop="R-P",
        webui_batch_size=16, ping_pong=False, wants_frames=False,
        file_formats=("GIF", "PNG"),
    )


def test_resolve_short_video_is_not_padded():
    # Reference bug #213: padding the WebUI batch to the context size.
    r = enabled(video_length=8, batch_size=16).resolve()
    assert (r.video_length, r.context_length, r.webui_batch_size, r.overlap) == (8, 8, 8, 0)
    assert r.video_length <= r.context_length  # one window


def test_resolve_long_video_uses_windows():
    r = enabled(video_length=40, batch_size=16, overlap=-1).resolve()
    assert (r.video_length, r.context_length, r.overlap, r.webui_batch_size) == (40, 16, 4, 40)
    assert r.video_length > r.context_length  # context windows


def test_resolve_with_source_frames():
    assert enabled(video_length=0).resolve(source_frames=40).video_length == 40
    assert enabled(video_length=24).resolve(source_frames=40).video_length == 24
    assert enabled(video_length=50).resolve(source_frames=40).video_length == 40
    assert enabled(video_length=0).resolve(source_frames=40.0).webui_batch_size == 40
    with pytest.raises(ParamError) as info:
        enabled().resolve(source_frames=0)
    assert info.value.field == "video_source"
    with pytest.raises(ParamError) as info:
        enabled().resolve(source_frames=20000)
    assert info.value.field == "video_length"


def test_resolve_overlap_is_what_runs():
    # One window: nothing overlaps, whatever was asked.
    assert enabled(video_length=8, batch_size=16, overlap=10).resolve().overlap == 0
    assert enabled(batch_size=8, overlap=3).resolve().overlap == 0
    # Windows: -1 is a quarter of the context, always below it.
    assert enabled(video_length=40, batch_size=16, overlap=-1).resolve().overlap == 4
    assert enabled(video_length=40, batch_size=8, overlap=3).resolve().overlap == 3
    assert enabled(video_length=40, batch_size=1).resolve().overlap == 0


def test_resolve_stride_is_the_levels_that_run():
    assert enabled(video_length=8, batch_size=16, stride=9).resolve().stride == 1
    assert enabled(video_length=32, batch_size=16, stride=9).resolve().stride == 2
    assert enabled(video_length=64, batch_size=16, stride=3).resolve().stride == 3


@pytest.mark.parametrize("mode, length, expected", [
    ("A", 16, True), ("A", 8, True), ("A", 0, True), ("A", 17, False), ("R-P", 16, False), ("N", 8, False),
])
def test_resolve_ping_pong(mode, length, expected):
    assert enabled(closed_loop=mode, video_length=length, batch_size=16).resolve().ping_pong is expected


def test_resolve_formats():
    r = enabled(format=["Frame", "mp4", "txt"]).resolve()
    assert r.wants_frames and r.file_formats == ("MP4", "TXT")


def test_resolve_is_strict_even_when_disabled():
    p = AnimateDiffParams(enable=False)
    p.fps = 0
    with pytest.raises(ParamError):
        p.resolve()


@pytest.mark.parametrize("bad", [0, -1, 2.5, "2.5", 9, 99, True, "two"])
def test_videos_per_batch_refuses_bad_values_naming_the_field(bad):
    with pytest.raises(ParamError) as info:
        enabled(videos_per_batch=bad)
    assert info.value.field == "videos_per_batch"
    assert str(info.value).startswith("AnimateDiff: 'videos_per_batch' must be an integer between 1 and 8, got ")
    with pytest.raises(ParamError) as info:
        from_dict({"enable": True, "videos_per_batch": bad})
    assert info.value.field == "videos_per_batch"


def test_videos_per_batch_disabled_never_blocks():
    AnimateDiffParams(enable=False, videos_per_batch=99)  # ranges are checked only when enabled
    assert AnimateDiffParams(enable=False, videos_per_batch="two").videos_per_batch == 1


@pytest.mark.parametrize("videos", [1, 2, "3", 8.0])
def test_resolve_videos_per_batch(videos):
    r = enabled(video_length=12, batch_size=8, videos_per_batch=videos).resolve()
    assert r.videos == int(videos)
    # The WebUI batch holds every video's frames; the motion module's limits stay per video.
    assert (r.video_length, r.context_length, r.webui_batch_size) == (12, 8, 12 * int(videos))
    assert r.overlap == 2 and r.stride == 1
    assert enabled(videos_per_batch=videos).resolve(source_frames=5).webui_batch_size == 5 * int(videos)


def test_videos_per_batch_frame_limit_is_per_video():
    from motion_module.request.params import check_context_fits

    # 8 videos x 24 frames: a WebUI batch of 192 rows, 24 frames per pass for the module.
    r = enabled(video_length=24, batch_size=24, videos_per_batch=8).resolve()
    assert r.webui_batch_size == 192
    check_context_fits(r, 24, "v1")
    with pytest.raises(ParamError) as info:
        check_context_fits(enabled(video_length=25, batch_size=25, videos_per_batch=1).resolve(), 24, "v1")
    assert info.value.field == "batch_size"


def test_resolved_is_frozen():
    r = enabled().resolve()
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.video_length = 3


# --- the core package stays WebUI-independent ------------------------------------


def test_core_modules_do_not_import_the_webui():
    code = (
        "import sys; import motion_module.request.params, motion_module.request.infotext, "
        "motion_module.request.model_files, motion_module.request.settings, motion_module.request.docs; "
        "bad = [m for m in sys.modules if m == 'modules' or m.startswith('modules.') or m.startswith('gradio')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)

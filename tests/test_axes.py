"""The X/Y/Z plot axes (motion_module/request/axes.py)."""

import pytest

from motion_module.errors import ParamError
from motion_module.request.axes import AXES, axis, parse_values
from motion_module.request.params import SPECS


def test_every_axis_is_a_parameter_with_a_short_label():
    assert set(AXES) <= set(SPECS)
    assert axis("video_length").label == "[AnimateDiff] Number of frames"
    assert axis("overlap").label == "[AnimateDiff] Overlap"
    assert len({axis(name).label for name in AXES}) == len(AXES)


def test_types_and_choices_come_from_the_declarations():
    assert (axis("video_length").type, axis("video_length").choices) == (int, None)
    assert axis("motion_scale").type is float
    assert axis("closed_loop").choices == ("N", "R-P", "R+P", "A")
    assert axis("freeinit_enable").choices == ("True", "False")
    assert axis("prompt_interp").choices == ("slerp", "lerp")  # "" (the setting's) is not an axis value


@pytest.mark.parametrize("name,values,parsed", [
    ("video_length", [8, "16"], [8, 16]), ("motion_scale", ["0.5", 1], [0.5, 1.0]),
    ("freeinit_enable", ["True", "False"], [True, False]), ("closed_loop", ["A", "N"], ["A", "N"]),
    ("overlap", [-1, 40], [-1, 40])])  # overlap's bound depends on the cell's context size
def test_values_parse_as_the_parameter_does(name, values, parsed):
    assert parse_values(name, values) == parsed


@pytest.mark.parametrize("name,values", [
    ("video_length", [8, 100000]), ("fps", [0]), ("batch_size", [65]), ("motion_scale", [2.5]),
    ("closed_loop", ["B"]), ("freeinit_enable", ["maybe"])])
def test_bad_values_are_refused_naming_the_parameter(name, values):
    with pytest.raises(ParamError) as e:
        parse_values(name, values)
    assert e.value.field == name

"""Prompt travel: parsing, the per-frame schedule, interpolation (motion_module.prompt_travel)."""

import math

import pytest
import torch

from motion_module.prompt_travel import interpolate, lerp, parse, schedule, slerp, travel_rows
from motion_module.request.params import ParamError


# --- parsing ------------------------------------------------------------------


def test_ordinary_prompt_is_not_travel():
    assert parse("a cat, best quality", 16) is None
    assert parse("masterpiece\n4k: detailed\n1girl, solo", 16) is None  # no line is "N: text"


def test_head_keyframes_tail_joined_without_stray_commas():
    travel = parse("masterpiece,\n0: a cat\n8: a dog\nsunny day", 16)
    assert travel.prompts == {0: "masterpiece, a cat, sunny day", 8: "masterpiece, a dog, sunny day"}
    assert parse("0: a cat\n8: a dog", 16).prompts == {0: "a cat", 8: "a dog"}
    assert parse("best\n0: a cat", 16).prompts == {0: "best, a cat"}


def test_what_users_type():
    travel = parse("head\r\n\r\n8:a dog\r\n 0 :  a cat  \r\n\r\ntail\r\n", 16)
    assert travel.prompts == {0: "head, a cat, tail", 8: "head, a dog, tail"}
    assert travel.keyframes == [0, 8] and "not in order" in travel.warnings[0]
    # A plain line between keyframes continues the keyframe above it.
    assert parse("0: a cat\nrunning fast\n8: a dog", 16).prompts[0] == "a cat, running fast"


def test_webui_syntax_inside_texts_is_kept():
    travel = parse("<lora:x:0.5> (best:1.2)\n0: [a cat:a dog:0.5]\n4: embedding_name\ntail", 8)
    assert travel.prompts[0] == "<lora:x:0.5> (best:1.2), [a cat:a dog:0.5], tail"
    assert travel.prompts[4] == "<lora:x:0.5> (best:1.2), embedding_name, tail"


@pytest.mark.parametrize("prompt, words", [
    ("0: a cat\n16: a dog", ["keyframe 16", "line 2", "0 to 15"]),
    ("0: a cat\n0: a dog", ["keyframe 0 appears twice", "line 2"]),
    ("0: a cat\n\n8:   ", ["keyframe 8", "line 3", "no text"]),
    ("0: ,", ["no text"]),
])
def test_refusals_name_the_line(prompt, words):
    with pytest.raises(ParamError) as info:
        parse(prompt, 16)
    assert info.value.field == "prompt"
    for word in words:
        assert word in str(info.value)


def test_frame_prompts_and_description():
    travel = parse("2: a cat\n8: a dog", 12)
    assert travel.frame_prompts(12) == ["a cat"] * 8 + ["a dog"] * 4  # before the first: the first
    assert travel.describe(12) == "frames 2–7: a cat\nframes 8–11: a dog"


# --- schedule -----------------------------------------------------------------


def test_schedule_between_keyframes():
    plan = schedule([0, 8], 16, wrap=False)
    assert plan[0] == (0, 0, 0.0) or plan[0] == (0, 8, 0.0)
    assert plan[4] == (0, 8, 0.5) and plan[6] == (0, 8, 0.75)
    assert plan[8:] == [(8, 8, 0.0)] * 8  # hold after the last


def test_schedule_hold_before_first_and_after_last():
    plan = schedule([4, 8], 12, wrap=False)
    assert plan[:4] == [(4, 4, 0.0)] * 4 and plan[10] == (8, 8, 0.0)


def test_schedule_wraps_across_the_loop_boundary():
    plan = schedule([4, 8], 12, wrap=True)
    # after 8 and before 4, the travel goes 8 -> 4 over 8 frames (8..11, 0..3)
    assert plan[8] == (8, 4, 0.0) and plan[10] == (8, 4, 2 / 8) and plan[0] == (8, 4, 4 / 8)
    assert plan[3] == (8, 4, 7 / 8) and plan[4] == (4, 8, 0.0)
    assert schedule([3], 8, wrap=True) == [(3, 3, 0.0)] * 8


# --- interpolation ------------------------------------------------------------


def test_endpoints_are_the_keyframe_conditionings():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(77, 8, generator=g), torch.randn(77, 8, generator=g)
    for method in ("slerp", "lerp"):
        assert torch.equal(interpolate(a, b, 0.0, method), a)
        assert torch.allclose(interpolate(a, b, 1.0, method), b, atol=1e-6)


def test_slerp_keeps_the_norm_of_the_travelling_part_lerp_does_not():
    a = torch.tensor([[1.0, 0.0], [5.0, 5.0]])
    b = torch.tensor([[0.0, 1.0], [5.0, 5.0]])
    mid_s, mid_l = slerp(a, b, 0.5), lerp(a, b, 0.5)
    assert torch.equal(mid_s[1], a[1])  # shared elements stay
    assert math.isclose(float(mid_s[0].norm()), 1.0, rel_tol=1e-6)
    assert math.isclose(float(mid_l[0].norm()), math.sqrt(0.5), rel_tol=1e-6)
    assert torch.allclose(mid_s[0], torch.tensor([math.sqrt(0.5)] * 2))


def test_parallel_conditionings_fall_back_to_lerp():
    a = torch.ones(4, 3)
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)


def test_different_chunk_counts_are_padded_as_the_webui_pads():
    g = torch.Generator().manual_seed(1)
    short, long = torch.randn(77, 4, generator=g), torch.randn(154, 4, generator=g)
    mid = interpolate(short, long, 0.5, "lerp")
    assert mid.shape == (154, 4)
    padded = torch.cat([short, short[-1:].expand(77, 4)])
    assert torch.allclose(mid, (padded + long) / 2, atol=1e-6)
    assert slerp(short, long, 0.25).shape == (154, 4)


def test_travel_rows_per_video_and_sdxl_dicts():
    frames, g = 4, torch.Generator().manual_seed(2)
    cond = torch.randn(2 * frames, 3, 5, generator=g)  # 2 videos
    plan = schedule([0, 3], frames, wrap=False)
    out = travel_rows(cond, frames, plan, "lerp")
    assert torch.equal(out[0], cond[0]) and torch.equal(out[3], cond[3])
    assert torch.allclose(out[5], cond[4] + (cond[7] - cond[4]) / 3)  # second video uses its own rows

    class DictWithShape(dict):
        @property
        def shape(self):
            return self["crossattn"].shape

    sdxl = DictWithShape(crossattn=torch.randn(frames, 3, 5, generator=g), vector=torch.randn(frames, 7, generator=g))
    moved = travel_rows(sdxl, frames, plan)
    assert type(moved) is DictWithShape and moved.shape == (frames, 3, 5)
    assert not torch.equal(moved["vector"][1], sdxl["vector"][1]) and torch.equal(moved["vector"][0], sdxl["vector"][0])


# --- on a real ldm UNet with a motion module ----------------------------------


def _unet_outputs(rows):
    import motion_module as mm
    from motion_module.synthetic import random_model
    from unets import channels_for, inputs, sd15_unet

    frames = rows.shape[0]
    unet = sd15_unet()
    model = random_model("v2", channels=channels_for("v2"))
    x, t, _ = inputs(videos=1, frames=frames, size=8)
    with torch.no_grad(), mm.inject(unet, model, frames=frames):
        return unet(x, t, context=rows)


def test_travel_on_a_real_unet():
    from unets import CONTEXT_DIM

    frames, g = 8, torch.Generator().manual_seed(3)
    cat, dog = torch.randn(7, CONTEXT_DIM, generator=g), torch.randn(7, CONTEXT_DIM, generator=g)
    plan = schedule(parse("0: a cat\n7: a cat", frames).keyframes, frames, wrap=False)
    # Same text at every keyframe: bit-identical to the ordinary prompt.
    same = travel_rows(cat.expand(frames, -1, -1).clone(), frames, plan)
    assert torch.equal(_unet_outputs(same), _unet_outputs(cat.expand(frames, -1, -1).clone()))
    # cat -> dog: each frame's output moves from the all-cat video towards the all-dog video.
    rows = torch.stack([cat] * 7 + [dog])  # frame 7 has the second keyframe's text
    travelled = _unet_outputs(travel_rows(rows, frames, schedule([0, 7], frames, wrap=False)))
    all_cat, all_dog = _unet_outputs(cat.expand(frames, -1, -1).clone()), _unet_outputs(dog.expand(frames, -1, -1).clone())
    to_cat = [float((travelled[i] - all_cat[i]).norm()) for i in range(frames)]
    to_dog = [float((travelled[i] - all_dog[i]).norm()) for i in range(frames)]
    assert to_cat[0] < to_dog[0] and to_cat[-1] > to_dog[-1]
    share = [c / (c + d) for c, d in zip(to_cat, to_dog)]  # 0 = all cat, 1 = all dog
    assert all(b > a for a, b in zip(share, share[1:])), share


def test_travel_wraps_only_for_closed_loops_longer_than_the_context():
    from motion_module.prompt_travel import wraps

    assert wraps(32, 16, "R+P") and wraps(32, 16, "A")
    assert not wraps(32, 16, "R-P") and not wraps(32, 16, "N")
    assert not wraps(16, 16, "R+P") and not wraps(8, 8, "A")  # one window: nothing to wrap around

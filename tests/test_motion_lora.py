"""Motion LoRAs and the v3 adapter (motion_module/lora.py) and motion scale,
on random files in the official layouts and the real ldm UNet."""

import json
import os

import pytest
import torch
from safetensors.torch import save_file

import motion_module as mm
from motion_module.errors import ParamError
from motion_module.lora import (ADAPTER, MOTION, LoraError, apply_motion_loras, describe_skipped, file_kind,
                                lora_tags, motion_tags, parse_lora, read_lora)
from motion_module.synthetic import random_lora, random_model
from unets import SD15_TEST_CHANNELS, channels_for, inputs, unet_for

LAYOUTS = os.path.join(os.path.dirname(__file__), "fixtures", "mm_layouts")
SMALL = SD15_TEST_CHANNELS


def layout(name):
    with open(os.path.join(LAYOUTS, f"{name}.json")) as f:
        return {k: list(v) for k, v in json.load(f)["keys"].items()}


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("what,naming,name,rank", [
    ("motion", "official", "motion_lora_v2", 64), ("motion", "a1111", "motion_lora_v2_a1111", 64),
    ("adapter", "official", "v3_adapter", 128), ("adapter", "a1111", "v3_adapter_a1111", 128)])
def test_generated_loras_have_the_official_layouts(what, naming, name, rank):
    sd = random_lora(what, naming, rank=rank)
    assert {k: list(v.shape) for k, v in sd.items()} == layout(name)


# -- tags ---------------------------------------------------------------------

def test_tags_use_the_webui_unet_multiplier():
    text = ("a cat <lora:PanLeft:0.8>, <lora:Zoom:0.5:1.25> <lyco:Tilt> <lora:Roll:te=0.2:unet=0.7>\n"
            "8: a dog <lora:PanLeft:0.8> <lora:img:x>")
    tags = lora_tags(text)
    assert [(t.name, t.multiplier) for t in tags] == [
        ("PanLeft", 0.8), ("Zoom", 1.25), ("Tilt", 1.0), ("Roll", 0.7), ("PanLeft", 0.8), ("img", None)]
    assert [(t.name, t.multiplier) for t in motion_tags(tags[:5])] == [
        ("PanLeft", 0.8), ("Zoom", 1.25), ("Tilt", 1.0), ("Roll", 0.7)]
    assert lora_tags("a cat") == []


@pytest.mark.parametrize("text,needle", [
    ("<lora:a:0.5> <lora:a:0.6>", "two weights"), ("<lora:a:strong>", "not a finite number"),
    ("<lora:a:inf>", "not a finite number"), ("<lora:a:1:nan>", "not a finite number"), ("<lora:a:-Infinity>", "finite")])
def test_bad_motion_lora_tags_are_refused_naming_the_prompt(text, needle):
    with pytest.raises(ParamError, match=needle) as e:
        motion_tags(lora_tags(text))
    assert e.value.field == "prompt"


# -- reading ------------------------------------------------------------------

def test_both_namings_read_to_the_same_pairs():
    official = parse_lora(random_lora("motion", "official", seed=3))
    a1111 = parse_lora({k: v.half() for k, v in random_lora("motion", "a1111", seed=3).items()})
    assert (official.kind, official.naming, a1111.kind, a1111.naming) == (MOTION, "official", MOTION, "a1111")
    assert official.pairs.keys() == a1111.pairs.keys() and len(official.pairs) == 168
    for key, pair in official.pairs.items():
        twin = a1111.pairs[key]
        assert torch.equal(pair.up, twin.up.float()) and torch.equal(pair.down, twin.down.float())


def test_adapter_official_names_become_the_kohya_names_of_the_resave():
    official = parse_lora(random_lora("adapter", "official", rank=128, seed=1))
    resave = random_lora("adapter", "a1111", rank=128, seed=1)
    assert official.kind == ADAPTER
    assert {f"{k}.lora_{part}.weight" for k in official.pairs for part in ("down", "up")} == set(resave)
    key = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0"
    assert torch.equal(official.pairs[key].up, resave[f"{key}.lora_up.weight"])


def test_only_our_files_are_claimed():
    assert file_kind(random_lora("motion", "a1111")) == MOTION
    assert file_kind(random_lora("adapter", "official", rank=4)) == ADAPTER
    # The re-saved adapter and ordinary image LoRAs are the WebUI's own business.
    assert file_kind(random_lora("adapter", "a1111", rank=4)) is None
    assert file_kind({"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(1)}) is None
    with pytest.raises(LoraError, match="not a motion LoRA"):
        parse_lora({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)})


def test_incomplete_pair_is_refused():
    sd = random_lora("motion", "official", rank=4, channels=SMALL)
    sd.pop(next(k for k in sd if k.endswith("to_q_lora.up.weight")))
    with pytest.raises(LoraError, match="no up matrix"):
        parse_lora(sd)


def test_files_on_disk_in_both_formats(tmp_path):
    sd = random_lora("motion", "official", rank=4, channels=SMALL)
    torch.save(sd, tmp_path / "v2_lora_PanLeft.ckpt")
    save_file({k: v.half() for k, v in random_lora("motion", "a1111", rank=4, channels=SMALL).items()},
              str(tmp_path / "mm_sd15_v2_lora_PanLeft.safetensors"))
    a = read_lora(tmp_path / "v2_lora_PanLeft.ckpt")
    b = read_lora(tmp_path / "mm_sd15_v2_lora_PanLeft.safetensors")
    assert a.pairs.keys() == b.pairs.keys()


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch MARKER_FILE",))


def test_pickled_lora_that_runs_code_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"x.processor.to_q_lora.down.weight": _Boom()}, tmp_path / "evil.ckpt")
    with pytest.raises(mm.CheckpointError, match="refused"):
        read_lora(tmp_path / "evil.ckpt")
    assert not (tmp_path / "MARKER_FILE").exists()


# -- applying -----------------------------------------------------------------

def _layer(model, key):
    return dict((n.replace(".", "_"), m) for n, m in model.named_modules())[key]


def test_applied_weights_equal_w_plus_m_up_down_and_removal_is_exact():
    model = random_model("v2", channels=SMALL)
    before = weights(model)
    params_before = {n: id(p) for n, p in model.named_parameters()}
    first = parse_lora(random_lora("motion", "official", rank=8, channels=SMALL, seed=1))
    second = parse_lora(random_lora("motion", "a1111", rank=4, channels=SMALL, seed=2, alpha=2))
    key = "down_blocks_1_motion_modules_0_temporal_transformer_transformer_blocks_0_attention_blocks_1_to_out_0"
    w = _layer(model, key).weight.clone()
    with apply_motion_loras(model, [("a", first, 0.8), ("b", second, -1.5)]) as applied:
        p1, p2 = first.pairs[key], second.pairs[key]
        assert p2.scale == 0.5  # alpha / rank
        expected = w + (p1.up @ p1.down) * 0.8 + (p2.up @ p2.down) * (-1.5 * 0.5)
        assert torch.equal(_layer(model, key).weight, expected)
        assert applied.skipped == {}
        changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
        assert len(changed) == 168 and all(".to_" in k for k in changed)
        # The patched weights are views of one buffer, exactly their size, freed whole at removal.
        storages = {patched.untyped_storage().data_ptr(): patched.untyped_storage().nbytes()
                    for _, _, patched in applied.swapped}
        assert list(storages.values()) == [sum(p.numel() * 4 for _, _, p in applied.swapped)]
    after = weights(model)
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert {n: id(p) for n, p in model.named_parameters()} == params_before


def test_removal_follows_a_module_moved_while_patched():
    # Forge's memory manager moves the module (.to) at the start of sampling, after the LoRA
    # went on; a dtype move stands in for a device move on a CPU-only machine.
    model = random_model("v2", channels=SMALL)
    before = weights(model)
    lora = parse_lora(random_lora("motion", rank=4, channels=SMALL, seed=3))
    with apply_motion_loras(model, [("x", lora, 1.0)]) as applied:
        assert applied.swapped
        model.to(torch.float64)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    after = weights(model)
    assert all(torch.equal(after[k], before[k].double()) for k in before)


def test_both_namings_give_identical_weights():
    results = []
    for naming in ("official", "a1111"):
        model = random_model("v2", channels=SMALL)
        lora = parse_lora(random_lora("motion", naming, rank=8, channels=SMALL, seed=5))
        with apply_motion_loras(model, [("x", lora, 1.0)]):
            results.append(weights(model))
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_zero_weight_changes_nothing():
    model = random_model("v2", channels=SMALL)
    with apply_motion_loras(model, [("x", parse_lora(random_lora("motion", rank=4, channels=SMALL)), 0.0)]) as a:
        assert a.swapped == []


@pytest.mark.parametrize("kind", ["v1", "v3"])
def test_modules_without_a_middle_block_skip_its_entries_and_say_so(kind):
    model = random_model(kind, channels=SMALL)
    with apply_motion_loras(model, [("PanLeft", parse_lora(random_lora("motion", rank=4, channels=SMALL)),
                                     1.0)]) as applied:
        assert list(applied.skipped) == ["PanLeft"]
        assert describe_skipped(applied.skipped["PanLeft"]) == "mid_block (8 layers)"
        assert len(applied.swapped) == 160


def test_sdxl_modules_and_wrong_widths_are_refused_before_anything_changes():
    lora = parse_lora(random_lora("motion", rank=4, channels=SMALL))
    with pytest.raises(LoraError, match="SD1.5 motion modules"):
        apply_motion_loras(random_model("sdxl", channels=channels_for("sdxl")), [("x", lora, 1.0)])
    model = random_model("v2", channels=(64, 64, 128, 128))
    before = weights(model)
    with pytest.raises(LoraError, match="another motion module"):
        apply_motion_loras(model, [("x", lora, 1.0)])
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_lora_changes_the_injected_unet_output_and_goes_away():
    unet, model = unet_for("v2"), random_model("v2", channels=SMALL)
    x, t, c = inputs(videos=1, frames=4, size=8)
    lora = parse_lora(random_lora("motion", rank=8, channels=SMALL, std=0.2))
    with torch.no_grad(), mm.inject(unet, model, frames=4):
        base = unet(x, t, context=c)
        with apply_motion_loras(model, [("x", lora, 1.0)]):
            moved = unet(x, t, context=c)
        again = unet(x, t, context=c)
    assert not torch.equal(base, moved)
    assert torch.equal(base, again)


# -- motion scale -------------------------------------------------------------

def _outputs(kind, scales):
    unet, model = unet_for(kind), random_model(kind, channels=channels_for(kind))
    x, t, c = inputs(videos=1, frames=4, size=8)
    with torch.no_grad():
        plain = unet(x, t, context=c)
        with mm.inject(unet, model, frames=4):
            default = unet(x, t, context=c)
        out = {}
        for scale in scales:
            with mm.inject(unet, model, frames=4, motion_scale=scale):
                out[scale] = unet(x, t, context=c)
    return plain, default, out


@pytest.mark.parametrize("kind", ["v2", "v3", "animatelcm", "sdxl"])
def test_motion_scale_zero_is_the_plain_unet_and_one_is_unchanged(kind):
    plain, default, out = _outputs(kind, (0.0, 0.5, 1.0))
    assert torch.equal(out[0.0], plain)
    assert torch.equal(out[1.0], default)
    assert not torch.equal(out[0.5], plain) and not torch.equal(out[0.5], default)


@pytest.mark.parametrize("kind", ["v1", "hotshot"])
def test_motion_scale_zero_keeps_the_joint_groupnorm_of_v1_and_hotshot(kind):
    # Their GroupNorms normalise over all frames of a video while injected,
    # which is part of how they were trained; 0 removes only the temporal blocks.
    plain, default, out = _outputs(kind, (0.0,))
    assert not torch.equal(out[0.0], plain) and not torch.equal(out[0.0], default)


def test_pickles_load_while_the_webui_has_replaced_torch_load(tmp_path, monkeypatch):
    # The WebUI's torch.load refuses zip entries newer torch writes and returns None.
    torch.save(random_lora("motion", "official", rank=4, channels=SMALL), tmp_path / "new_format.ckpt")
    monkeypatch.setattr(torch, "load", lambda *a, **k: None)
    assert read_lora(tmp_path / "new_format.ckpt").kind == MOTION


def test_an_error_while_applied_still_restores():
    model = random_model("v2", channels=SMALL)
    before = weights(model)
    with pytest.raises(RuntimeError), apply_motion_loras(
            model, [("x", parse_lora(random_lora("motion", rank=4, channels=SMALL)), 1.0)]):
        raise RuntimeError("interrupted")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())

"""Motion modules in diffusers' MotionAdapter layout (the Hub's diffusion_pytorch_model.safetensors,
AnimateDiff-Lightning's *_diffusers.safetensors) load exactly like their official-layout twins."""

import json
import os

import pytest
import torch
from safetensors.torch import save_file
from unets import channels_for, inputs, unet_for

import motion_module as mm
from motion_module.diffusers_layout import from_diffusers_names, is_diffusers_layout
from motion_module.layers import sinusoidal_position_encoding
from motion_module.probe import probe
from motion_module.synthetic import random_model, state_dict_for_file

LAYOUTS = os.path.join(os.path.dirname(__file__), "fixtures", "mm_layouts")
# diffusers layout fixture -> (official layout it is converted from, kind)
DIFFUSERS_LAYOUTS = {"diffusers_motion_adapter_v2": ("animatediff_v2", "v2"),
                     "diffusers_motion_adapter_v3": ("animatediff_v3", "v3"),
                     "diffusers_motion_adapter_sdxl": ("animatediff_sdxl", "sdxl")}
KINDS = ["v2", "v3", "sdxl"]
FRAMES = 4


def layout(name):
    with open(os.path.join(LAYOUTS, f"{name}.json")) as f:
        return {k: tuple(v) for k, v in json.load(f)["keys"].items()}


def meta_state_dict(shapes):
    return {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}


@pytest.mark.parametrize("name", sorted(DIFFUSERS_LAYOUTS))
def test_mapping_turns_diffusers_layout_into_exactly_the_official_one(name):
    """Two independent facts: MotionAdapter's state dict (diffusers' class) and the official files."""
    official, _ = DIFFUSERS_LAYOUTS[name]
    shapes = layout(name)
    assert is_diffusers_layout(shapes) and not is_diffusers_layout(layout(official))
    mapped = {k: tuple(v.shape) for k, v in from_diffusers_names(meta_state_dict(shapes)).items()}
    assert mapped == layout(official)


@pytest.mark.parametrize("name", sorted(DIFFUSERS_LAYOUTS))
def test_full_size_diffusers_layouts_are_detected(name):
    _, kind = DIFFUSERS_LAYOUTS[name]
    sd = meta_state_dict(layout(name))
    from motion_module.detect import detect_any_naming
    _, det = detect_any_naming(sd)
    assert (det.kind.name, det.max_frames, det.pe_in_file) == (kind, 32, True)
    no_pe = {k: v for k, v in sd.items() if not k.endswith(".pe")}
    _, det = detect_any_naming(no_pe)  # converted without tables: the kind's own length
    assert (det.kind.name, det.max_frames, det.pe_in_file) == (kind, 32, False)


@pytest.mark.parametrize("kind", KINDS)
def test_generated_diffusers_files_have_exactly_diffusers_layout(kind):
    name = next(n for n, (_, k) in DIFFUSERS_LAYOUTS.items() if k == kind)
    with torch.device("meta"):
        model = mm.MotionModel(mm.get_kind(kind), 32)
    got = {k: tuple(v.shape) for k, v in state_dict_for_file(model, "diffusers").items()}
    assert got == layout(name)


def test_one_module_maps_key_by_key():
    m = "up_blocks.1.motion_modules.2"
    b, t = f"{m}.transformer_blocks.0", f"{m}.temporal_transformer.transformer_blocks.0"
    pe = torch.zeros(1, 32, 8)
    sd = {f"{m}.norm.weight": 1, f"{m}.proj_in.bias": 2, f"{m}.proj_out.weight": 3,
          f"{b}.attn1.to_q.weight": 4, f"{b}.attn2.to_out.0.bias": 5, f"{b}.norm1.weight": 6,
          f"{b}.norm2.bias": 7, f"{b}.norm3.weight": 8, f"{b}.ff.net.0.proj.weight": 9, f"{b}.ff.net.2.bias": 10,
          f"{b}.pos_embed.pe": pe}
    out = from_diffusers_names(sd)
    pe_a, pe_b = out.pop(f"{t}.attention_blocks.0.pos_encoder.pe"), out.pop(f"{t}.attention_blocks.1.pos_encoder.pe")
    assert pe_a is pe and pe_b is not pe and torch.equal(pe_b, pe)  # one buffer per attention block
    assert out == {
        f"{m}.temporal_transformer.norm.weight": 1, f"{m}.temporal_transformer.proj_in.bias": 2,
        f"{m}.temporal_transformer.proj_out.weight": 3, f"{t}.attention_blocks.0.to_q.weight": 4,
        f"{t}.attention_blocks.1.to_out.0.bias": 5, f"{t}.norms.0.weight": 6, f"{t}.norms.1.bias": 7,
        f"{t}.ff_norm.weight": 8, f"{t}.ff.net.0.proj.weight": 9, f"{t}.ff.net.2.bias": 10}


def write(path, sd, dtype=torch.float16):
    save_file({k: v.to(dtype).contiguous() for k, v in sd.items()}, str(path))
    return path


@pytest.fixture(scope="module", params=KINDS)
def pair(request, tmp_path_factory):
    """A random module of one kind saved three ways as safetensors: the official layout, diffusers'
    layout with its tables, and diffusers' layout without tables. fp32, because a file's own tables
    are used: fp16 files hold fp16-rounded tables, which the computed ones (fp32) are not."""
    kind = request.param
    folder = tmp_path_factory.mktemp(f"diffusers_{kind}")
    model = random_model(kind, channels=channels_for(kind), seed=11)
    files = {"official": ("mm_comfyui", {}), "diffusers": ("diffusion_pytorch_model", {"naming": "diffusers"}),
             "diffusers_no_pe": ("no_pe", {"naming": "diffusers", "include_pe": False})}
    return kind, {variant: write(folder / f"{name}.safetensors", state_dict_for_file(model, **kw), torch.float32)
                  for variant, (name, kw) in files.items()}


def tensors(model):
    return {**dict(model.state_dict()), **{k: v for k, v in model.named_buffers() if k.endswith(".pe")}}


@pytest.mark.parametrize("variant", ["diffusers", "diffusers_no_pe"])
def test_both_layouts_load_to_identical_tensors(pair, variant):
    kind, paths = pair
    official, other = mm.load(paths["official"]), mm.load(paths[variant])
    assert (other.kind, other.max_frames) == (official.kind, official.max_frames) == (kind, 32)
    a, b = tensors(official), tensors(other)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    c = channels_for(kind)[0]
    pe = other.down_blocks[0].motion_modules[0].temporal_transformer.transformer_blocks[0]
    assert torch.equal(pe.attention_blocks[1].pos_encoder.pe, sinusoidal_position_encoding(32, c))


@pytest.mark.parametrize("variant", ["diffusers", "diffusers_no_pe"])
def test_probe_reports_kind_and_frames_without_loading(pair, variant):
    kind, paths = pair
    det = probe(paths[variant])
    assert (det.kind.name, det.max_frames, det.pe_in_file) == (kind, 32, variant == "diffusers")


def test_unet_outputs_are_bit_identical_after_injection(pair):
    kind, paths = pair
    unet = unet_for(kind)
    x, t, c = inputs(videos=1, frames=FRAMES, size=8)
    outputs = {}
    with torch.no_grad():
        plain = unet(x, t, context=c)
        for variant, path in paths.items():
            with mm.inject(unet, mm.load(path), frames=FRAMES):
                outputs[variant] = unet(x, t, context=c)
    assert not torch.equal(outputs["official"], plain)
    assert torch.isfinite(outputs["official"]).all()
    assert torch.equal(outputs["diffusers"], outputs["official"])
    assert torch.equal(outputs["diffusers_no_pe"], outputs["official"])


def test_lightning_files_load_as_v2(tmp_path):
    """AnimateDiff-Lightning ships each step count twice: *_comfyui (official layout) and
    *_diffusers (MotionAdapter layout), fp16, distilled from v2."""
    model = random_model("v2", channels=channels_for("v2"), seed=4)
    comfy = mm.load(write(tmp_path / "animatediff_lightning_4step_comfyui.safetensors", state_dict_for_file(model)))
    diff = mm.load(write(tmp_path / "animatediff_lightning_4step_diffusers.safetensors",
                         state_dict_for_file(model, "diffusers")))
    for loaded in (comfy, diff):
        assert (loaded.kind, loaded.max_frames, loaded.is_sdxl) == ("v2", 32, False)
        assert loaded.name.startswith("animatediff_lightning_4step_")
    a, b = tensors(comfy), tensors(diff)
    assert all(torch.equal(a[k], b[k]) for k in a)


def small_diffusers(kind="v2"):
    return state_dict_for_file(random_model(kind, channels=channels_for(kind), seed=3), "diffusers")


@pytest.mark.parametrize("extra", [
    "down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q.bias",  # attention_bias=True
    "conv_in.weight",  # PIA's adapter
    "down_blocks.1.motion_modules.0.temporal_transformer.norm.weight",  # the two layouts mixed
    "mid_block.motion_modules.0.transformer_blocks.0.pos_embed.weight",
])
def test_keys_outside_the_layout_are_named(extra):
    sd = small_diffusers()
    sd[extra] = torch.zeros(4)
    with pytest.raises(mm.CheckpointError, match=r"diffusers' MotionAdapter layout.*1 key\(s\).*" + extra.replace(".", r"\.")):
        mm.load(sd)


def test_missing_extra_block_and_partial_tables_are_refused():
    sd = small_diffusers()
    del sd["up_blocks.3.motion_modules.2.transformer_blocks.0.ff.net.2.weight"]
    with pytest.raises(mm.CheckpointError, match="1 missing key.*up_blocks.3.motion_modules.2.temporal_transformer"
                                                 ".transformer_blocks.0.ff.net.2.weight"):
        mm.load(sd)
    sd = small_diffusers()
    sd["down_blocks.0.motion_modules.0.transformer_blocks.1.norm1.weight"] = torch.ones(32)
    with pytest.raises(mm.CheckpointError, match="unexpected key.*transformer_blocks.1.norms.0.weight"):
        mm.load(sd)
    sd = small_diffusers()
    del sd["down_blocks.2.motion_modules.1.transformer_blocks.0.pos_embed.pe"]
    with pytest.raises(mm.CheckpointError, match="position encodings do not match"):
        mm.load(sd)
    sd = small_diffusers()
    sd["down_blocks.2.motion_modules.1.transformer_blocks.0.pos_embed.pe"] = torch.zeros(1, 16, 128)
    with pytest.raises(mm.CheckpointError, match="inconsistent position-encoding lengths"):
        mm.load(sd)


LORA_DOWN = torch.zeros(4, 32)
OTHER_FILES = {
    # diffusers' motion LoRA (scripts/convert_animatediff_motion_lora_to_diffusers.py), unprefixed and prefixed
    "diffusers motion LoRA": ({"down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight":
                               LORA_DOWN}, "motion LoRA of rank 4"),
    "prefixed diffusers motion LoRA": ({"unet.down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.processor."
                                        "to_q_lora.down.weight": LORA_DOWN}, "motion LoRA of rank 4"),
    "peft motion LoRA": ({"down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q.lora_A.weight": LORA_DOWN,
                          "down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q.lora_B.weight":
                          torch.zeros(32, 4)}, "motion LoRA of rank 4"),
    "diffusers UNetMotionModel": ({"down_blocks.0.resnets.0.conv1.weight": torch.zeros(32, 32, 3, 3),
                                   "down_blocks.0.motion_modules.0.norm.weight": torch.zeros(32)},
                                  "whole UNet in diffusers' layout"),
    "diffusers UNet2DConditionModel": ({"conv_in.weight": torch.zeros(32, 4, 3, 3),
                                        "down_blocks.0.attentions.0.proj_in.weight": torch.zeros(32, 32)},
                                       "whole UNet in diffusers' layout"),
    "SparseCtrl in diffusers' layout": ({"controlnet_cond_embedding.conv_in.weight": torch.zeros(16, 3, 3, 3),
                                         "down_blocks.0.motion_modules.0.norm.weight": torch.zeros(32)}, "SparseCtrl"),
}


@pytest.mark.parametrize("what", sorted(OTHER_FILES))
def test_other_diffusers_files_are_refused_with_what_they_are(tmp_path, what):
    sd, message = OTHER_FILES[what]
    with pytest.raises(mm.CheckpointError, match=message):
        mm.load(sd)
    path = write(tmp_path / "x.safetensors", sd, torch.float32)
    with pytest.raises(mm.CheckpointError, match=message):
        probe(path)

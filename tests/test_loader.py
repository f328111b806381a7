"""Loading every AnimateDiff checkpoint kind, and refusing everything else clearly."""

import json
import os
import pickle

import pytest
import torch

import motion_module as mm
from motion_module.loader import FP8
from motion_module.synthetic import random_model, state_dict_for_file
from unets import channels_for

LAYOUTS = os.path.join(os.path.dirname(__file__), "fixtures", "mm_layouts")
MOTION_LAYOUTS = {  # layout file -> (kind, position-encoding length)
    "animatediff_v1": ("v1", 24), "animatediff_v2": ("v2", 32), "animatediff_v3": ("v3", 32),
    "animatediff_sdxl": ("sdxl", 32), "hotshot_xl": ("hotshot", 24), "hotshot_xl_a1111": ("hotshot", 24),
    "animatelcm": ("animatelcm", 64),
}
OTHER_LAYOUTS = {
    "motion_lora_v2": "motion LoRA", "motion_lora_v2_a1111": "motion LoRA", "v3_adapter": "LoRA",
    "v3_adapter_a1111": "LoRA", "sparsectrl_rgb": "SparseCtrl", "sparsectrl_scribble": "SparseCtrl",
}


def layout(name):
    with open(os.path.join(LAYOUTS, f"{name}.json")) as f:
        return {k: tuple(v) for k, v in json.load(f)["keys"].items()}


def empty_state_dict(name, dtype=torch.float32):
    # Uninitialised memory is fine: only names and shapes are under test, and
    # the official files' exact layouts are what the JSONs record.
    return {k: torch.empty(shape, dtype=dtype) for k, shape in layout(name).items()}


@pytest.mark.parametrize("name", sorted(MOTION_LAYOUTS))
def test_every_official_layout_loads_strictly_and_is_detected(name):
    kind, pe_len = MOTION_LAYOUTS[name]
    model = mm.load(empty_state_dict(name))
    assert (model.kind, model.max_frames) == (kind, pe_len)
    assert model.is_sdxl == mm.get_kind(kind).is_sdxl
    assert sum(p.numel() for p in model.parameters()) == json.load(open(os.path.join(LAYOUTS, f"{name}.json")))["total_params"]


@pytest.mark.parametrize("name", sorted(MOTION_LAYOUTS))
def test_generated_files_have_exactly_the_official_layout(name):
    """Our synthetic fixtures are only trustworthy if they match the real files."""
    kind, _ = MOTION_LAYOUTS[name]
    naming = "hotshot" if name == "hotshot_xl" else "animatediff"
    with torch.device("meta"):
        model = mm.MotionModel(mm.get_kind(kind), MOTION_LAYOUTS[name][1])
    got = {k: tuple(v.shape) for k, v in state_dict_for_file(model, naming, include_pe=kind != "animatelcm").items()}
    assert got == layout(name)


@pytest.mark.parametrize("name", sorted(OTHER_LAYOUTS))
def test_other_animatediff_files_are_refused_with_what_they_are(name):
    with pytest.raises(mm.CheckpointError, match=OTHER_LAYOUTS[name]):
        mm.load(empty_state_dict(name))


def test_stable_diffusion_checkpoint_is_refused():
    sd = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
          "first_stage_model.encoder.conv_in.weight": torch.zeros(128, 3, 3, 3)}
    with pytest.raises(mm.CheckpointError, match="Stable Diffusion checkpoint"):
        mm.load(sd)


def test_unrelated_tensors_are_refused_with_found_and_expected():
    with pytest.raises(mm.CheckpointError, match="expected keys like .*found foo.weight"):
        mm.load({"foo.weight": torch.zeros(3)})


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(mm.CheckpointError, match="not found"):
        mm.load(tmp_path / "nope.ckpt")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(mm.CheckpointError, match="empty"):
        mm.load(tmp_path / "empty.ckpt")
    (tmp_path / "junk.safetensors").write_bytes(os.urandom(1000))
    with pytest.raises(mm.CheckpointError, match="truncated or corrupt|not a valid"):
        mm.load(tmp_path / "junk.safetensors")
    with pytest.raises(mm.CheckpointError, match="no tensors"):
        mm.load({"animatediff_config": ""})


@pytest.fixture(scope="module")
def small_v2():
    return random_model("v2", channels=channels_for("v2"), seed=7)


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt", ".pt", ".pth"])
def test_file_formats_round_trip(tmp_path, small_v2, suffix):
    path = tmp_path / f"mm{suffix}"
    sd = state_dict_for_file(small_v2)
    if suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file(sd, str(path))
    else:
        torch.save(sd, str(path))
    loaded = mm.load(path)
    assert loaded.kind == "v2" and loaded.name == path.name and same_weights(loaded, small_v2)


def test_format_is_recognised_from_content_not_extension(tmp_path, small_v2):
    from safetensors.torch import save_file
    path = tmp_path / "really_safetensors.ckpt"
    save_file(state_dict_for_file(small_v2), str(path))
    assert same_weights(mm.load(path), small_v2)


@pytest.mark.parametrize("wrap", ["state_dict", "nested", "dummy_key", "module_prefix", "all"])
def test_container_variants(tmp_path, small_v2, wrap):
    sd = state_dict_for_file(small_v2)
    if wrap in ("module_prefix", "all"):
        sd = {"module." + k: v for k, v in sd.items()}
    if wrap in ("dummy_key", "all"):
        sd["animatediff_config"] = ""
    if wrap in ("state_dict", "all"):
        sd = {"state_dict": sd, "epoch": 3}
    if wrap == "nested":
        sd = {"state_dict": {"state_dict": sd}}
    path = tmp_path / "wrapped.ckpt"
    torch.save(sd, str(path))
    assert same_weights(mm.load(path), small_v2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_stored_dtypes_load_and_convert(small_v2, dtype):
    sd = {k: v.to(dtype) for k, v in state_dict_for_file(small_v2).items()}
    loaded = mm.load(sd)
    assert next(loaded.parameters()).dtype == torch.float32
    assert mm.load(sd, dtype=torch.float16).down_blocks[0].motion_modules[0].temporal_transformer.proj_in.weight.dtype \
        == torch.float16


def test_hotshot_original_naming_loads_as_hotshot():
    model = random_model("hotshot", channels=channels_for("hotshot"), seed=2)
    loaded = mm.load(state_dict_for_file(model, naming="hotshot"))
    assert loaded.kind == "hotshot" and loaded.max_frames == 24 and same_weights(loaded, model)


def test_position_tables_come_from_the_file(small_v2):
    sd = state_dict_for_file(small_v2)
    key = next(k for k in sd if k.endswith("pos_encoder.pe"))
    sd[key] = sd[key] * 2  # a finetune may have trained its table
    loaded = mm.load(sd)
    assert torch.equal(dict(loaded.named_buffers())[key], sd[key])


def test_animatelcm_without_tables_gets_64_computed_positions():
    model = random_model("animatelcm", channels=channels_for("animatelcm"))
    loaded = mm.load(state_dict_for_file(model, include_pe=False))
    assert loaded.kind == "animatelcm" and loaded.max_frames == 64
    from motion_module.layers import sinusoidal_position_encoding
    pe = loaded.down_blocks[0].motion_modules[0].temporal_transformer.transformer_blocks[0].attention_blocks[0].pos_encoder.pe
    assert torch.equal(pe, sinusoidal_position_encoding(64, channels_for("animatelcm")[0]))


def test_wrong_shape_names_the_tensor_and_both_shapes(small_v2):
    sd = state_dict_for_file(small_v2)
    key = "up_blocks.1.motion_modules.2.temporal_transformer.proj_out.weight"
    sd[key] = torch.zeros(5, 5)
    with pytest.raises(mm.CheckpointError, match=r"wrong shape.*proj_out.weight.*\[5, 5\].*expected \[128, 128\]"):
        mm.load(sd)


def test_missing_and_unexpected_keys_are_named(small_v2):
    sd = state_dict_for_file(small_v2)
    del sd["down_blocks.2.motion_modules.1.temporal_transformer.proj_in.bias"]
    sd["down_blocks.0.motion_modules.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(mm.CheckpointError) as e:
        mm.load(sd)
    assert "missing key(s), e.g. 'down_blocks.2.motion_modules.1.temporal_transformer.proj_in.bias'" in str(e.value)
    assert "unexpected key(s), e.g. 'down_blocks.0.motion_modules.0.extra.weight'" in str(e.value)


def test_partial_position_tables_are_refused(small_v2):
    sd = state_dict_for_file(small_v2)
    del sd[next(k for k in sd if k.endswith("pos_encoder.pe"))]
    with pytest.raises(mm.CheckpointError, match="position encodings do not match"):
        mm.load(sd)


def test_truncated_files_are_refused(tmp_path, small_v2):
    for name in ("t.safetensors", "t.ckpt"):
        path = tmp_path / name
        sd = state_dict_for_file(small_v2)
        if name.endswith(".safetensors"):
            from safetensors.torch import save_file
            save_file(sd, str(path))
        else:
            torch.save(sd, str(path))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(mm.CheckpointError, match="truncated or corrupt"):
            mm.load(path)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path, small_v2):
    marker = tmp_path / "pwned"
    sd = dict(state_dict_for_file(small_v2))
    sd["payload"] = _Exploit(marker)
    path = tmp_path / "evil.ckpt"
    torch.save(sd, str(path))
    with pytest.raises(mm.CheckpointError, match="refused to load 'evil.ckpt'.*unsafe"):
        mm.load(path)
    assert not marker.exists()
    # plain pickle (not a torch zip) with the same payload
    path2 = tmp_path / "evil2.pt"
    with open(path2, "wb") as f:
        pickle.dump({"x": _Exploit(marker)}, f)
    with pytest.raises(mm.CheckpointError):
        mm.load(path2)
    assert not marker.exists()


def test_full_size_files_in_their_shipped_formats(tmp_path):
    """One real-size file per container, in the official layouts: HotShot's own
    safetensors naming, and a wrapped fp16 pickle of v3. Zeros keep writing
    cheap; reading, detection and the strict layout check are the real ones."""
    from safetensors.torch import save_file

    hs = tmp_path / "hsxl_temporal_layers.safetensors"
    save_file({k: torch.zeros(shape, dtype=torch.float16) for k, shape in layout("hotshot_xl").items()}, str(hs))
    model = mm.load(hs)
    assert (model.kind, model.max_frames, model.is_sdxl) == ("hotshot", 24, True)
    del model
    v3 = tmp_path / "v3_sd15_mm.ckpt"
    sd = {k: torch.zeros(shape, dtype=torch.float16) for k, shape in layout("animatediff_v3").items()}
    torch.save({"state_dict": sd, "animatediff_config": ""}, str(v3))
    del sd
    model = mm.load(v3)
    assert (model.kind, model.max_frames, model.is_sdxl) == ("v3", 32, False)


def test_tensor_names_read_names_only_and_never_run_a_pickle(tmp_path):
    """What the API reads to tell a checkpoint's family before a switch: the
    names, from a safetensors header or a wrapped zip pickle; a pickle with
    code is refused without running it."""
    from safetensors.torch import save_file

    from motion_module.checkpoint import tensor_names

    sd = {"conditioner.embedders.0.w": torch.zeros(2), "model.diffusion_model.x": torch.ones(3)}
    save_file(sd, str(tmp_path / "xl.safetensors"))
    torch.save({"state_dict": sd, "global_step": 7}, str(tmp_path / "xl.ckpt"))
    assert sorted(tensor_names(tmp_path / "xl.safetensors")) == sorted(sd)
    assert sorted(tensor_names(tmp_path / "xl.ckpt")) == sorted(sd)
    marker = tmp_path / "pwned"
    torch.save({"state_dict": sd, "payload": _Exploit(marker)}, str(tmp_path / "evil.ckpt"))
    with pytest.raises(mm.CheckpointError, match="unsafe"):
        tensor_names(tmp_path / "evil.ckpt")
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "xl.safetensors").read_bytes()[:20])
    with pytest.raises(mm.CheckpointError):
        tensor_names(tmp_path / "cut.safetensors")
    assert not marker.exists()


def test_loading_does_not_depend_on_a_patched_load_state_dict(monkeypatch):
    """The WebUI's LoadStateDictOnMeta replaces Module.load_state_dict with a
    wrapper that has no `assign`; overlapping checkpoint loads can leave it
    in place. Our loader keeps torch's own method."""
    state = state_dict_for_file(random_model("v2", channels=channels_for("v2")))

    def webui_wrapper(self, state_dict, strict=True):
        raise AssertionError("the WebUI's wrapper was called")

    monkeypatch.setattr(torch.nn.Module, "load_state_dict", webui_wrapper)
    model = mm.load(state)
    assert model.kind == "v2"


def _storages(model):
    return {p.untyped_storage().data_ptr(): (p.dtype, p.untyped_storage().nbytes()) for p in model.parameters()}


@pytest.mark.parametrize("suffix,fp8", [(".safetensors", False), (".ckpt", False), (".safetensors", True)])
def test_a_loaded_module_keeps_its_weights_in_one_buffer_per_dtype(tmp_path, small_v2, suffix, fp8):
    # Hundreds of separate tensors stay in the process heap after a module is
    # dropped; one buffer per dtype, exactly the weights' size, goes back whole
    # and shows the file's own tensors were not kept.
    path = tmp_path / f"m{suffix}"
    sd = state_dict_for_file(small_v2)
    if suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file({k: v.half() for k, v in sd.items()}, str(path))
    else:
        torch.save({k: v.half() for k, v in sd.items()}, str(path))
    model = mm.load(path, fp8=fp8)
    by_dtype = {}
    for p in model.parameters():
        by_dtype.setdefault(p.dtype, []).append(p)
    assert set(by_dtype) == ({FP8, torch.float32} if fp8 else {torch.float32})
    assert sorted(_storages(model).values(), key=str) == sorted(
        ((dtype, sum(p.numel() for p in params) * dtype.itemsize) for dtype, params in by_dtype.items()), key=str)
    expected = {k: v.half().float() for k, v in small_v2.state_dict().items() if not k.endswith("pe")}
    for key, value in model.state_dict().items():
        if key in expected and value.dtype == torch.float32:
            assert torch.equal(value, expected[key]), key


def _write_safetensors(path, entries, header_pad=0):
    # A file as the format describes it, written by hand so that the header can
    # leave the data unaligned (older writers did not pad it).
    header, blobs, offset = {}, [], 0
    for name, (code, tensor) in entries.items():
        blob = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": code, "shape": list(tensor.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode() + b" " * header_pad
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))


@pytest.mark.parametrize("pad", [0, 1, 3])
def test_the_safetensors_reader_gives_every_dtype_at_any_alignment(tmp_path, pad):
    from motion_module.checkpoint import SAFETENSORS_DTYPES, read_file
    gen = torch.Generator().manual_seed(pad)
    entries = {}
    for code, dtype in SAFETENSORS_DTYPES.items():
        values = torch.randn(3, 5, generator=gen) * 4
        entries[f"t.{code}"] = (code, values.to(dtype) if dtype != torch.bool else values > 0)
    entries["empty"] = ("F32", torch.empty(0, 7))
    entries["scalar"] = ("F16", torch.tensor(2.5, dtype=torch.float16))
    path = tmp_path / "all.safetensors"
    _write_safetensors(path, entries, header_pad=pad)
    got = read_file(path)
    assert set(got) == set(entries)
    for name, (_, tensor) in entries.items():
        assert got[name].dtype == tensor.dtype and got[name].shape == tensor.shape, name
        assert torch.equal(got[name].reshape(-1).view(torch.uint8), tensor.reshape(-1).view(torch.uint8)), name


@pytest.mark.parametrize("change,why", [
    (lambda h: h["a"].update(data_offsets=[0, 12]), "bytes 0..12"),
    (lambda h: h["a"].update(data_offsets=[8, 24]), "bytes 8..24"),
    (lambda h: h["a"].update(dtype="F7"), "'F7'"),
    (lambda h: h["a"].update(shape=[-2, -2]), "bytes 0..16"),
    (lambda h: h.update(b=[1, 2]), "tensor 'b'"),
])
def test_the_safetensors_reader_refuses_an_inconsistent_header(tmp_path, change, why):
    path = tmp_path / "bad.safetensors"
    header = {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    change(header)
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + bytes(16))
    with pytest.raises(mm.CheckpointError, match="'bad.safetensors' as safetensors: the file is truncated or corrupt") as e:
        mm.load(path)
    assert why in str(e.value)

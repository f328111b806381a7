"""Kind detection of files from names and shapes only (the model dropdown's filter)."""

import os

import pytest
import torch

import motion_module as mm
from motion_module.probe import probe
from motion_module.synthetic import random_model, save_random_checkpoint, state_dict_for_file
from unets import channels_for


@pytest.mark.parametrize("kind,name,naming", [
    ("v1", "a.safetensors", None), ("v2", "b.ckpt", None), ("v3", "c.pt", None),
    ("animatelcm", "d.safetensors", None), ("sdxl", "e.safetensors", None),
    ("hotshot", "f.safetensors", "hotshot"), ("hotshot", "g.ckpt", None),
])
def test_probe_detects_every_kind_without_loading(tmp_path, kind, name, naming):
    path = save_random_checkpoint(tmp_path / name, kind, naming=naming, channels=channels_for(kind))
    detection = probe(path)
    assert detection.kind.name == kind
    assert detection.max_frames == mm.load(path).max_frames


def test_probe_sees_containers_like_the_loader(tmp_path):
    sd = state_dict_for_file(random_model("v2", channels=channels_for("v2")))
    path = tmp_path / "wrapped.ckpt"
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "animatediff_config": ""}, str(path))
    assert probe(path).kind.name == "v2"


def test_probe_refuses_what_the_loader_refuses(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((16).to_bytes(8, "little") + b"{not json at all")
    with pytest.raises(mm.CheckpointError, match="corrupt safetensors header"):
        probe(bad)
    lora = tmp_path / "lora.safetensors"
    from safetensors.torch import save_file
    save_file({"down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0"
               ".processor.to_q_lora.down.weight": torch.zeros(4, 32)}, str(lora))
    with pytest.raises(mm.CheckpointError, match="motion LoRA"):
        probe(lora)


def test_probe_cache_follows_file_changes(tmp_path):
    path = str(tmp_path / "m.safetensors")
    save_random_checkpoint(path, "v3", channels=channels_for("v3"))
    assert probe(path).kind.name == "v3"
    save_random_checkpoint(path, "v2", channels=channels_for("v2"))
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    assert probe(path).kind.name == "v2"

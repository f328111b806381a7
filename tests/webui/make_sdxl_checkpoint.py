"""Build the random-weight SDXL checkpoint the WebUI suite's SDXL tests use.

Run with the harness WebUI's Python, from its folder (nothing is downloaded):

    cd ~/webui-harness/webui
    HF_HOME=~/webui-harness/hf HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \\
      PYTHONPATH=repositories/generative-models ../venv/bin/python \\
      /path/to/extension/tests/webui/make_sdxl_checkpoint.py models/Stable-diffusion/rand_sdxl_small

It writes NAME.yaml (A1111 uses a config beside a checkpoint of the same
name): sd_xl_base.yaml with transformer_depth [0, 1, 2] instead of
[0, 2, 10], so the UNet keeps SDXL's levels, widths and context (what the
motion modules are injected into) at a fraction of the size. Those are
Segmind Vega's depths, which Forge (no config files: it guesses the model
from its tensors) recognises as an SDXL model; and
NAME.safetensors: that model with random weights in fp16 (about 2.9 GiB; the
build peaks at about 6.3 GiB of RAM). The text encoders are built from their
configs; OpenCLIP's vision tower, which SDXL discards, is made tiny.
"""

import copy
import os
import sys

import torch


def main(name, seed=0):
    import open_clip
    from omegaconf import OmegaConf
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    CLIPTextModel.from_pretrained = staticmethod(
        lambda version, *a, **kw: CLIPTextModel(CLIPTextConfig.from_pretrained(version)))

    def random_clip(model_name, pretrained=None, device="cpu", **kw):
        config = copy.deepcopy(open_clip.get_model_config(model_name))
        config["vision_cfg"] = dict(image_size=14, layers=1, width=64, head_width=64, mlp_ratio=1.0, patch_size=14)
        return open_clip.model.CLIP(**config).to(device), None, None

    open_clip.create_model_and_transforms = random_clip
    from sgm.util import instantiate_from_config

    base = os.path.join("repositories", "generative-models", "configs", "inference", "sd_xl_base.yaml")
    config = OmegaConf.load(base)
    config.model.params.network_config.params.transformer_depth = [0, 1, 2]
    OmegaConf.save(config, name + ".yaml")
    # Building only (the WebUI makes the same two changes when it loads a model).
    config.model.params.first_stage_config.params.ddconfig.attn_type = "vanilla"
    config.model.params.network_config.params.use_checkpoint = False

    torch.manual_seed(seed)
    model = instantiate_from_config(config.model).eval()
    generator = torch.Generator().manual_seed(10_000 + seed)
    with torch.no_grad():
        # ldm zero-initialises output layers; a UNet with them at zero predicts no noise at all.
        for module in model.model.diffusion_model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and not module.weight.any():
                module.weight.normal_(0.0, 0.02, generator=generator)
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.01, generator=generator)
    model.half()
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    assert "conditioner.embedders.1.model.ln_final.weight" in state  # what the WebUI recognises SDXL by
    partial = name + ".safetensors.part"
    save_file(state, partial, metadata={"made_by": "tests/webui/make_sdxl_checkpoint.py", "seed": str(seed)})
    os.replace(partial, name + ".safetensors")
    print(f"{name}.safetensors: {len(state)} tensors, {os.path.getsize(name + '.safetensors') / 2 ** 30:.2f} GiB")


if __name__ == "__main__":
    main(sys.argv[1])

"""Build the random-weight ControlNet v1.1 SD1.5 model the ControlNet tests use.

    cd <webui> && PYTHONPATH=repositories/stable-diffusion-stability-ai:repositories/generative-models \\
      <webui venv>/bin/python tests/webui/make_controlnet_model.py <sd-webui-controlnet folder> \\
      models/ControlNet/control_v11p_sd15_rand.safetensors

The WebUI's Python has what ControlNet's modules import (transformers...);
nothing is downloaded. The network is ControlNet's own class
(`scripts.cldm.ControlNet` with its default SD1.5 config and a 3-channel hint),
so the file has exactly the keys and shapes its loader detects as an SD1.5
ControlNet. ControlNet zero-initialises its output convolutions (and the hint
encoder's last one), which would make the hint do nothing; those are drawn
again at random, small enough that the random checkpoint stays finite.
"""

import ast
import os
import sys
import types

import torch


def _controlnet_class(extension):
    # cldm needs the WebUI's devices module only to move models; a stand-in suffices here.
    if "modules.devices" not in sys.modules:
        devices = types.ModuleType("modules.devices")
        devices.get_device_for = lambda name: torch.device("cpu")
        sys.modules.setdefault("modules", types.ModuleType("modules")).devices = devices
        sys.modules["modules.devices"] = devices
    # ControlNet's `scripts` folder is a namespace package; another `scripts` package on the path would win.
    package = types.ModuleType("scripts")
    package.__path__ = [os.path.join(extension, "scripts")]
    sys.modules["scripts"] = package
    sys.path.insert(0, extension)
    from scripts.cldm import ControlNet

    # The default SD1.5 config, read from ControlNet's source: importing its module pulls in the whole WebUI.
    with open(os.path.join(extension, "scripts", "controlnet_model_guess.py")) as f:
        tree = ast.parse(f.read())
    config = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                  and getattr(node.targets[0], "id", None) == "controlnet_default_config")
    return ControlNet, config


def main(extension, path, seed=0):
    from safetensors.torch import save_file

    ControlNet, config = _controlnet_class(extension)
    torch.manual_seed(seed)
    model = ControlNet(**config, hint_channels=3)
    generator = torch.Generator().manual_seed(10_000 + seed)
    last_hint_conv = [m for m in model.input_hint_block.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    zeroed = [*model.zero_convs.modules(), *model.middle_block_out.modules()]
    with torch.no_grad():
        for module in zeroed:
            if isinstance(module, torch.nn.Conv2d):
                module.weight.normal_(0.0, 0.05, generator=generator)
                module.bias.normal_(0.0, 0.01, generator=generator)
        # A strong hint embedding, so that the control image outweighs the random network's own features.
        last_hint_conv.weight.normal_(0.0, 1.0, generator=generator)
        last_hint_conv.bias.zero_()
    state = {k: v.to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    assert tuple(state["input_hint_block.0.weight"].shape) == (16, 3, 3, 3)
    assert tuple(state["input_blocks.5.1.transformer_blocks.0.attn2.to_k.weight"].shape) == (640, 768)
    assert "label_emb.0.0.bias" not in state
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file(state, path)
    print(f"wrote {path}: {sum(v.numel() for v in state.values()) / 1e6:.0f} M parameters")


if __name__ == "__main__":
    main(*sys.argv[1:3])

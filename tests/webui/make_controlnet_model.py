"""Build the random-weight ControlNet v1.1 SD1.5 model the ControlNet tests use.

    cd <webui> && PYTHONPATH=repositories/stable-diffusion-stability-ai:repositories/generative-models \\
      <webui venv>/bin/python tests/webui/make_controlnet_model.py <sd-webui-controlnet folder> \\
      models/ControlNet/control_v11p_sd15_rand.safetensors
    ... make_controlnet_model.py <sd-webui-controlnet folder> models/ControlNet/sparsectrl_rgb_sd15_rand.safetensors \\
      sparsectrl

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


def _controlnet_classes(extension):
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
    from scripts.controlnet_sparsectrl import SparseCtrl

    # The default SD1.5 config, read from ControlNet's source: importing its module pulls in the whole WebUI.
    with open(os.path.join(extension, "scripts", "controlnet_model_guess.py")) as f:
        tree = ast.parse(f.read())
    config = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                  and getattr(node.targets[0], "id", None) == "controlnet_default_config")
    return ControlNet, SparseCtrl, config


def _sparsectrl_motion_state(seed):
    """SparseCtrl's temporal layers in the official layout, from this project's own class."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    from motion_module.layers import sinusoidal_position_encoding
    from motion_module.sparsectrl import MAX_FRAMES, SparseCtrlMotion

    torch.manual_seed(seed)
    state = dict(SparseCtrlMotion(lambda x: 1).state_dict())
    for key in [k for k in state if k.endswith("attention_blocks.0.to_q.weight")]:
        prefix = key[: -len("to_q.weight")]
        state[prefix + "pos_encoder.pe"] = sinusoidal_position_encoding(MAX_FRAMES, state[key].shape[0])
    return state


def main(extension, path, kind="controlnet", seed=0):
    """kind: "controlnet" (a ControlNet v1.1 SD1.5 with a 3-channel hint) or
    "sparsectrl" (SparseCtrl RGB in the A1111 layout: a 4+1-channel latent
    hint and the temporal layers)."""
    from safetensors.torch import save_file

    ControlNet, SparseCtrl, config = _controlnet_classes(extension)
    torch.manual_seed(seed)
    if kind == "sparsectrl":
        model = SparseCtrl(use_simplified_condition_embedding=True, conditioning_channels=5, **config)
    else:
        model = ControlNet(**config, hint_channels=3)
    generator = torch.Generator().manual_seed(10_000 + seed)
    hint_convs = [m for m in model.input_hint_block.modules() if isinstance(m, torch.nn.Conv2d)]
    zeroed = [*model.zero_convs.modules(), *model.middle_block_out.modules()]
    with torch.no_grad():
        # PyTorch's default init shrinks the signal at each of the hint encoder's convolutions while their
        # biases do not shrink, so its output hardly depends on the image; He init without biases keeps it.
        for conv in hint_convs[:-1]:
            conv.weight.normal_(0.0, (2 / conv.weight[0].numel()) ** 0.5, generator=generator)
            conv.bias.zero_()
        for module in zeroed:
            if isinstance(module, torch.nn.Conv2d):
                module.weight.normal_(0.0, 0.05, generator=generator)
                module.bias.normal_(0.0, 0.01, generator=generator)
        # The hint's embedding then has std ~1.4 against ~0.5 for the latent's, so the image dominates.
        hint_convs[-1].weight.normal_(0.0, 0.1 if len(hint_convs) > 1 else 1.0, generator=generator)
        hint_convs[-1].bias.zero_()
    state = model.state_dict()
    if kind == "sparsectrl":
        state.update(_sparsectrl_motion_state(seed))
    state = {k: v.to(torch.float16).contiguous() for k, v in state.items()}
    hint_shape = (320, 5, 3, 3) if kind == "sparsectrl" else (16, 3, 3, 3)
    assert tuple(state["input_hint_block.0.weight"].shape) == hint_shape
    assert tuple(state["input_blocks.5.1.transformer_blocks.0.attn2.to_k.weight"].shape) == (640, 768)
    assert "label_emb.0.0.bias" not in state
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file(state, path)
    print(f"wrote {path}: {sum(v.numel() for v in state.values()) / 1e6:.0f} M parameters")


if __name__ == "__main__":
    main(*sys.argv[1:4])

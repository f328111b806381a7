"""`load()`: a checkpoint (path or state dict) -> a ready MotionModel."""

import os

import torch

from .buffers import mapped_views
from .checkpoint import read_state_dict
from .detect import PE_SUFFIX, detect_any_naming
from .errors import CheckpointError
from .layers import PositionalEncoding, sinusoidal_position_encoding
from .model import MotionModel

# torch's own method, as it was when we were imported. The WebUI swaps
# Module.load_state_dict for a wrapper without `assign` while it loads a
# checkpoint, and two overlapping loads (a switch during its start-up load)
# can leave that wrapper in place for good.
_LOAD_STATE_DICT = torch.nn.Module.load_state_dict


def _expected_layout(model: MotionModel) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _position_tables(model: MotionModel) -> dict:
    return {name + ".pe": module for name, module in model.named_modules() if isinstance(module, PositionalEncoding)}


def _check_layout(weights: dict, expected: dict, kind_name: str):
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = sorted(k for k in set(expected) & set(weights) if tuple(weights[k].shape) != expected[k])
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s), e.g. {missing[0]!r}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[0]!r}")
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} tensor(s) of the wrong shape, e.g. {k!r} is {list(weights[k].shape)}, "
                     f"expected {list(expected[k])}")
    raise CheckpointError(f"the file looks like a {kind_name} motion module but does not match its layout: "
                          + "; ".join(parts))


def _fill_position_tables(model, file_tables: dict, kind_name: str):
    """Use the file's tables where present: a finetune may have trained them."""
    tables = _position_tables(model)
    if file_tables:
        missing = sorted(set(tables) - set(file_tables))
        unexpected = sorted(set(file_tables) - set(tables))
        if missing or unexpected:
            example = (missing or unexpected)[0]
            raise CheckpointError(f"the {kind_name} motion module's position encodings do not match its layout "
                                  f"({len(missing)} missing, {len(unexpected)} unexpected, e.g. {example!r})")
    for key, module in tables.items():
        table = file_tables.get(key)
        if table is None:
            # The table depends only on (length, channels), so it can be rebuilt.
            table = sinusoidal_position_encoding(module.pe.shape[1], module.pe.shape[2])
        elif table.shape != module.pe.shape:
            raise CheckpointError(f"position encoding {key!r} has shape {list(table.shape)}, "
                                  f"expected {list(module.pe.shape)}")
        module.pe = table.to(torch.float32)


def load(source, device="cpu", dtype=None, fp8=False) -> MotionModel:
    """Load a motion module from a path or an in-memory state dict.

    The kind is detected from keys and shapes. The file must match that kind's
    layout exactly (no missing, unexpected or mis-shaped tensors). `dtype`
    defaults to float32. `fp8` stores the Linear weights in float8 (see
    `pack_parameters`).
    """
    sd, det = detect_any_naming(read_state_dict(source, mmap=True))

    file_tables = {k: v for k, v in sd.items() if k.endswith(PE_SUFFIX)}
    weights = {k: v for k, v in sd.items() if not k.endswith(PE_SUFFIX)}
    # Building on the meta device costs nothing; the file's tensors are then
    # assigned in place, which avoids initialising ~400M random parameters.
    with torch.device("meta"):
        model = MotionModel(det.kind, det.max_frames, det.channels)
    _check_layout(weights, _expected_layout(model), det.kind.name)
    _LOAD_STATE_DICT(model, weights, strict=True, assign=True)
    _fill_position_tables(model, file_tables, det.kind.name)

    pack_parameters(model, device, dtype or torch.float32, fp8)
    for module in model.modules():  # the position tables
        for name, table in module._buffers.items():
            if table is not None:
                module._buffers[name] = table.to(device=device, dtype=dtype or torch.float32)
    model.eval().requires_grad_(False)
    model.name = os.path.basename(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else ""
    return model


FP8 = torch.float8_e4m3fn


def pack_parameters(model, device, dtype, fp8=False) -> None:
    """Copy the weights into one buffer per dtype on `device`: `dtype`, and
    with `fp8` float8 (e4m3) for the Linear layers' weights and biases, as the
    WebUI's FP8 option stores its own Linear layers. Those are computed in the
    UNet's dtype under the autocast the WebUI samples in, which casts them per
    operation; norms stay in `dtype`, and the motion module computes in it
    (layers.MotionModule). The tensors read from the file are then released,
    and a dropped module's memory goes back to the system
    (buffers.mapped_empty)."""
    groups = {}
    for module in model.modules():
        target = FP8 if fp8 and isinstance(module, torch.nn.Linear) else dtype
        for name, param in module._parameters.items():
            if param is not None:
                groups.setdefault(target, []).append((module, name, param))
    for target, members in groups.items():
        views = mapped_views([param.shape for _, _, param in members], target, device)
        for (module, name, param), view in zip(members, views):
            module._parameters[name] = torch.nn.Parameter(view.copy_(param.detach()), requires_grad=False)



"""Motion modules saved in diffusers' `MotionAdapter` layout -> AnimateDiff naming.

Files such as `diffusion_pytorch_model.safetensors` of guoyww/animatediff-motion-adapter-v1-5-2 /
-v1-5-3 / -sdxl-beta, and ByteDance/AnimateDiff-Lightning's `*_diffusers.safetensors`, hold the
same tensors as the official files under other names. diffusers' conversion script
(scripts/convert_animatediff_motion_module_to_diffusers.py) renames the official keys by dropping
`.temporal_transformer` and renaming `attention_blocks.{0,1}` -> `attn{1,2}`, `norms.{0,1}` ->
`norm{1,2}` and `ff_norm` -> `norm3`; it skips the position tables, and `MotionAdapter` then adds
its own persistent one, `transformer_blocks.K.pos_embed.pe`, which diffusers adds before both
attentions of the block.

`from_diffusers_names` inverts that. With M = `{down_blocks.I | up_blocks.I | mid_block}.motion_modules.J`
and T = `temporal_transformer`, every key maps by exactly one rule:

    M.norm.{weight,bias}                      -> M.T.norm.*            (GroupNorm)
    M.proj_in.{weight,bias}                   -> M.T.proj_in.*
    M.proj_out.{weight,bias}                  -> M.T.proj_out.*
    M.transformer_blocks.K.attn1.P            -> M.T.transformer_blocks.K.attention_blocks.0.P
    M.transformer_blocks.K.attn2.P            -> M.T.transformer_blocks.K.attention_blocks.1.P
        P in to_q.weight, to_k.weight, to_v.weight, to_out.0.weight, to_out.0.bias
    M.transformer_blocks.K.norm1.*            -> M.T.transformer_blocks.K.norms.0.*
    M.transformer_blocks.K.norm2.*            -> M.T.transformer_blocks.K.norms.1.*
    M.transformer_blocks.K.norm3.*            -> M.T.transformer_blocks.K.ff_norm.*
    M.transformer_blocks.K.ff.net.0.proj.*    -> M.T.transformer_blocks.K.ff.net.0.proj.*
    M.transformer_blocks.K.ff.net.2.*         -> M.T.transformer_blocks.K.ff.net.2.*
    M.transformer_blocks.K.pos_embed.pe       -> M.T.transformer_blocks.K.attention_blocks.0.pos_encoder.pe
                                             and M.T.transformer_blocks.K.attention_blocks.1.pos_encoder.pe
                                                 (the second a copy: one buffer per attention block)

Any other key (a bias on to_q, a `conv_in` of PIA's adapter, a UNet's resnets, keys already in
AnimateDiff naming) is a CheckpointError that names it. A file without `pos_embed.pe` keys maps
to one without position tables; the loader then computes them.
"""

import re

from .errors import CheckpointError

_MODULE = re.compile(r"^((?:down_blocks|up_blocks)\.\d+|mid_block)\.motion_modules\.(\d+)\.(.+)$")
_BLOCK = re.compile(r"^transformer_blocks\.(\d+)\.(.+)$")
# Sub-keys the diffusers layout starts a motion module's keys with (and the official one does not).
_DIFFUSERS_HEADS = ("norm.", "proj_in.", "proj_out.", "transformer_blocks.")
_TRANSFORMER = "temporal_transformer"
_OUTER = {f"{layer}.{p}": f"{layer}.{p}" for layer in ("norm", "proj_in", "proj_out") for p in ("weight", "bias")}
_ATTENTION_PARAMS = ("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "to_out.0.bias")
_IN_BLOCK = {
    **{f"attn{a + 1}.{p}": f"attention_blocks.{a}.{p}" for a in (0, 1) for p in _ATTENTION_PARAMS},
    **{f"{d}.{p}": f"{o}.{p}" for d, o in (("norm1", "norms.0"), ("norm2", "norms.1"), ("norm3", "ff_norm"))
       for p in ("weight", "bias")},
    **{f"ff.net.{n}.{p}": f"ff.net.{n}.{p}" for n in ("0.proj", "2") for p in ("weight", "bias")},
}
DIFFUSERS_PE = "pos_embed.pe"
_PE_TARGETS = ("attention_blocks.0.pos_encoder.pe", "attention_blocks.1.pos_encoder.pe")


def is_diffusers_layout(sd) -> bool:
    """True when a motion module's keys follow diffusers' naming (no `temporal_transformer.`)."""
    return any((m := _MODULE.match(k)) and m.group(3).startswith(_DIFFUSERS_HEADS) for k in sd)


def _official_names(key: str) -> tuple:
    """The AnimateDiff key(s) a diffusers key maps to; () when it fits no rule."""
    m = _MODULE.match(key)
    if m is None:
        return ()
    block, index, rest = m.groups()
    head = f"{block}.motion_modules.{index}.{_TRANSFORMER}."
    if rest in _OUTER:
        return (head + _OUTER[rest],)
    b = _BLOCK.match(rest)
    if b is None:
        return ()
    inner_head = f"{head}transformer_blocks.{b.group(1)}."
    inner = b.group(2)
    if inner == DIFFUSERS_PE:
        return tuple(inner_head + target for target in _PE_TARGETS)
    if inner in _IN_BLOCK:
        return (inner_head + _IN_BLOCK[inner],)
    return ()


def from_diffusers_names(sd: dict) -> dict:
    """A state dict in diffusers' MotionAdapter naming -> the same tensors in AnimateDiff naming.

    Pure (the input is left as it is); tensors are passed through uncopied, except the second
    copy of each position table. Raises CheckpointError naming the keys that fit no rule.
    """
    out, unknown = {}, []
    for key, value in sd.items():
        names = _official_names(key)
        if not names:
            unknown.append(key)
        for i, name in enumerate(names):
            # Each position table gets its own tensor, as in the official files: modules that
            # share one buffer would be deduplicated by named_buffers() and the like.
            out[name] = value if i == 0 else value.clone()
    if unknown:
        unknown.sort()
        shown = ", ".join(repr(k) for k in unknown[:5]) + (f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else "")
        raise CheckpointError(
            f"this file looks like a motion module in diffusers' MotionAdapter layout, but {len(unknown)} key(s) "
            f"are not part of that layout: {shown}")
    return out

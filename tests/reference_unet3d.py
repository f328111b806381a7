"""An independent formulation of the official AnimateDiff UNet3D forward pass.

It walks the same ldm UNet weights but computes everything the official
3-D UNet does on 5-D `b c f h w` video tensors, written directly from the
official model's structure with einops and explicit softmax attention:

- ResBlock and output GroupNorms: over all frames of a video for the kinds
  whose UNet used non-inflated GroupNorm (v1, HotShot), per frame otherwise;
- spatial transformers, down/upsamplers: per frame;
- motion module: GroupNorm (per frame for SD1.5 kinds and HotShot, over
  frames for AnimateDiff-SDXL), proj_in, two temporal self-attention blocks
  with the sinusoidal table added to the normed input before q/k/v, GEGLU
  feed-forward, proj_out, residual.

It shares no code with `motion_module` beyond reading the weights.
"""

import torch
import torch.nn.functional as F
from einops import rearrange
from ldm.modules.diffusionmodules.util import timestep_embedding


def _is_resblock(layer):
    return type(layer).__name__ == "ResBlock"


def _group_norm(gn, h, frames, over_frames):
    if not over_frames:
        return F.group_norm(h.float(), gn.num_groups, gn.weight, gn.bias, gn.eps).type(h.dtype)
    video = rearrange(h, "(b f) c x y -> b c f x y", f=frames)
    out = F.group_norm(video.float(), gn.num_groups, gn.weight, gn.bias, gn.eps)
    return rearrange(out, "b c f x y -> (b f) c x y").type(h.dtype)


def _resblock(block, h, emb, frames, joint):
    in_norm, in_act, in_conv = block.in_layers
    x = h
    h = in_conv(F.silu(_group_norm(in_norm, h, frames, joint)))
    h = h + block.emb_layers(emb)[..., None, None]
    out_norm, _, _, out_conv = block.out_layers
    h = out_conv(F.silu(_group_norm(out_norm, h, frames, joint)))
    return block.skip_connection(x) + h


def _temporal_attention(attn, hidden, frames, heads=8):
    positions = hidden.shape[1]
    seq = rearrange(hidden, "(b f) d c -> (b d) f c", f=frames)
    seq = seq + attn.pos_encoder.pe[:, :frames]
    q = rearrange(F.linear(seq, attn.to_q.weight), "n f (h e) -> n h f e", h=heads)
    k = rearrange(F.linear(seq, attn.to_k.weight), "n f (h e) -> n h f e", h=heads)
    v = rearrange(F.linear(seq, attn.to_v.weight), "n f (h e) -> n h f e", h=heads)
    scores = torch.einsum("nhie,nhje->nhij", q, k) * q.shape[-1] ** -0.5
    out = torch.einsum("nhij,nhje->nhie", scores.softmax(dim=-1), v)
    out = F.linear(rearrange(out, "n h f e -> n f (h e)"), attn.to_out[0].weight, attn.to_out[0].bias)
    return rearrange(out, "(b d) f c -> (b f) d c", d=positions)


def _motion_module(mm, h, frames, norm_over_frames):
    tt = mm.temporal_transformer
    residual = h
    height, width = h.shape[-2:]
    normed = _group_norm(tt.norm, h, frames, norm_over_frames)
    hidden = rearrange(normed, "n c x y -> n (x y) c")
    hidden = F.linear(hidden, tt.proj_in.weight, tt.proj_in.bias)
    block = tt.transformer_blocks[0]
    for attn, norm in zip(block.attention_blocks, block.norms):
        normed = F.layer_norm(hidden, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        hidden = _temporal_attention(attn, normed, frames) + hidden
    normed = F.layer_norm(hidden, block.ff_norm.normalized_shape, block.ff_norm.weight, block.ff_norm.bias,
                          block.ff_norm.eps)
    proj = block.ff.net[0].proj
    value, gate = F.linear(normed, proj.weight, proj.bias).chunk(2, dim=-1)
    hidden = F.linear(value * F.gelu(gate), block.ff.net[2].weight, block.ff.net[2].bias) + hidden
    hidden = F.linear(hidden, tt.proj_out.weight, tt.proj_out.bias)
    return rearrange(hidden, "n (x y) c -> n c x y", x=height, y=width) + residual


def _run_block(block, h, emb, context, frames, joint):
    for layer in block:
        if _is_resblock(layer):
            h = _resblock(layer, h, emb, frames, joint)
        elif type(layer).__name__ == "SpatialTransformer":
            h = layer(h, context)
        else:
            h = layer(h)
    return h


def reference_forward(unet, model, x, timesteps, context, frames):
    kind = model.kind_info
    joint = kind.joint_groupnorm
    over = kind.module_norm_over_frames
    emb = unet.time_embed(timestep_embedding(timesteps, unet.model_channels, repeat_only=False))
    down = iter(model.down_modules())
    up = iter(model.up_modules())
    skips = []
    h = x
    for block in unet.input_blocks:
        h = _run_block(block, h, emb, context, frames, joint)
        if any(_is_resblock(layer) for layer in block):
            h = _motion_module(next(down), h, frames, over)
        skips.append(h)
    mid = list(unet.middle_block)
    h = _resblock(mid[0], h, emb, frames, joint)
    h = mid[1](h, context)
    if model.mid_module() is not None:
        h = _motion_module(model.mid_module(), h, frames, over)
    h = _resblock(mid[2], h, emb, frames, joint)
    for block in unet.output_blocks:
        h = torch.cat([h, skips.pop()], dim=1)
        layers = list(block)
        upsample = layers.pop() if type(layers[-1]).__name__ == "Upsample" else None
        for layer in layers:
            h = _resblock(layer, h, emb, frames, joint) if _is_resblock(layer) else layer(h, context)
        h = _motion_module(next(up), h, frames, over)
        if upsample is not None:
            h = upsample(h)
    out_norm, _, out_conv = unet.out
    return out_conv(F.silu(_group_norm(out_norm, h, frames, joint)))

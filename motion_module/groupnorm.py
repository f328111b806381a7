"""Per-video GroupNorm for the kinds trained that way (v1, HotShot-XL).

Their UNets normalised ResBlock and final-output activations over all frames
of a video at once. We reproduce it by giving the individual GroupNorm
instances of one UNet a new `forward` for the duration of a run. Nothing is
patched on a class, so other models and other threads are unaffected, and
the number of videos is derived from each call's batch, so it works whether
the WebUI sends cond and uncond together or apart.
"""

from torch import nn


def _is_resblock(module) -> bool:
    # ldm and sgm each define their own ResBlock class; both have these parts.
    return all(hasattr(module, a) for a in ("in_layers", "out_layers", "emb_layers"))


def joint_groupnorm_targets(unet) -> list:
    """The GroupNorms the official v1 UNet ran on 5-D (video) tensors."""
    targets = []
    for module in unet.modules():
        if _is_resblock(module):
            targets += [module.in_layers[0], module.out_layers[0]]
    out = getattr(unet, "out", None)
    if isinstance(out, nn.Sequential) and len(out) and isinstance(out[0], nn.GroupNorm):
        targets.append(out[0])
    return [t for t in targets if isinstance(t, nn.GroupNorm)]


class JointGroupNormPatch:
    """Swaps `forward` on specific GroupNorm instances; `remove()` undoes it."""

    def __init__(self, norms, state):
        self.norms = list(norms)
        self.state = state
        self._saved = {}

    def apply(self):
        for norm in self.norms:
            self._saved[id(norm)] = norm.__dict__.get("forward")
            norm.forward = self._make_forward(norm, self._saved[id(norm)])

    def remove(self):
        for norm in self.norms:
            previous = self._saved.pop(id(norm), None)
            if previous is None:
                norm.__dict__.pop("forward", None)
            else:
                norm.forward = previous

    def _make_forward(self, norm, previous):
        state = self.state

        def plain(x):
            # Resolved at call time so a class-level patch made by someone else
            # after us (e.g. a WebUI hijack) still applies.
            return previous(x) if previous is not None else type(norm).forward(norm, x)

        def forward(x):
            frames = state.frames
            if not state.active or x.dim() != 4 or x.shape[0] % frames:
                return plain(x)
            bf, c, h, w = x.shape
            video = x.reshape(bf // frames, frames, c, h * w).transpose(1, 2)  # (b, c, f, hw)
            return plain(video).transpose(1, 2).reshape(bf, c, h, w)

        return forward

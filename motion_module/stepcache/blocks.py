"""The UNet blocks a cached step skips, and per-instance hooks on them.

ldm's and sgm's UNets (and every forward that re-implements their block loop,
such as sd-webui-controlnet's) run `input_blocks` in order, keep each output
for the skip connection, run `middle_block`, then each output block on the
concatenation of the running features and the matching skip. With depth d the
shallow blocks are input blocks 0..d and the output blocks that take their
skips; everything between is deep. The last deep output block's result is
what the first shallow output block receives from below: the reused feature.

Hooks are instance-level `forward`s, so the UNet's own forward (or whoever
replaced it) keeps running the loop; each is removed by identity.
"""
from __future__ import annotations

from ..errors import IncompatibleUNetError


def max_depth(unet) -> int:
    """The deepest usable depth: at least one input block stays deep."""
    return len(unet.input_blocks) - 2


def deep_blocks(unet, depth: int):
    """(skipped blocks in call order, the block whose output is reused)."""
    inputs, outputs = list(unet.input_blocks), list(unet.output_blocks)
    if len(inputs) != len(outputs) or not hasattr(unet, "middle_block"):
        raise IncompatibleUNetError("step caching needs an ldm/sgm UNet with as many output as input blocks")
    if not 0 <= depth <= max_depth(unet):
        raise IncompatibleUNetError(f"step-cache depth {depth} is outside 0..{max_depth(unet)} for this UNet")
    boundary = len(outputs) - 2 - depth
    skipped = inputs[depth + 1:] + [unet.middle_block] + outputs[:boundary + 1]
    return skipped, outputs[boundary]


def control_deep_blocks(network, depth: int, input_blocks: int) -> list:
    """A control network's blocks whose outputs feed only blocks a cached step skips.

    A ControlNet is a copy of the UNet's input blocks and middle block; its
    residual i goes to the UNet's skip connection i and the last to the
    middle, so the residuals of input blocks deeper than `depth` and of the
    middle block are used only by skipped blocks. [] for a network without
    that layout (adapters and other control models run as they are)."""
    inputs = getattr(network, "input_blocks", None)
    if inputs is None or len(inputs) != input_blocks or not hasattr(network, "middle_block"):
        return []
    return list(inputs)[depth + 1:] + [network.middle_block]


class BlockHook:
    """`forward` of one block while attached: `route(block, run, *args)` decides."""

    def __init__(self, block, route):
        self.block = block
        self.route = route
        self.previous = block.__dict__.get("forward")
        self.attached = False

    def _call_block(self, *args, **kwargs):
        if self.previous is not None:
            return self.previous(*args, **kwargs)
        return type(self.block).forward(self.block, *args, **kwargs)

    def __call__(self, *args, **kwargs):
        if not self.attached:
            return self._call_block(*args, **kwargs)
        return self.route(self, *args, **kwargs)

    def attach(self):
        self.block.forward = self
        self.attached = True

    def detach(self):
        self.attached = False
        # Someone who wrapped us since keeps us in their chain (we pass through).
        if self.block.__dict__.get("forward") is self:
            if self.previous is None:
                del self.block.__dict__["forward"]
            else:
                self.block.forward = self.previous

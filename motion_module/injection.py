"""Putting a MotionModel into an ldm/sgm UNet for one run, and taking it out.

    with motion_module.inject(unet, model, frames=16):
        eps = unet(x, t, context=c)       # x: videos * frames rows, video-major

Placement follows the official UNet3D: a motion module runs after each
ResBlock(+SpatialTransformer) of the down path, at the end of each up block
but before its Upsample, and (v2, AnimateLCM) between the middle block's
SpatialTransformer and its last ResBlock. The positions are found from the
UNet's structure and checked against the module's channel widths, so a module
never lands in a layer it was not trained for.

Everything the injection changes is per instance and recorded: small
`TemporalSlot` modules inserted into the UNet's block lists, an instance-level
`forward` on the UNet (unless the host sends each evaluation through
`Injection.evaluate` itself), and (v1/HotShot) instance-level `forward`s on some
GroupNorms. Removal finds them by identity, not by position, so another
extension editing the same blocks in between cannot make us remove its work.
"""

import logging
from contextlib import ExitStack, contextmanager
from functools import partial

from torch import nn

from .errors import FrameCountError, IncompatibleUNetError, MotionModuleError
from .groupnorm import JointGroupNormPatch, _is_resblock, joint_groupnorm_targets
from .context.hints import frames_of_rows
from .context.runner import WindowRunner

log = logging.getLogger("animatediff")
MARKER = "_animatediff_injection"


class RunState:
    """Shared by all pieces of one injection: what the current UNet call holds."""

    def __init__(self, frames: int, motion_scale: float = 1.0):
        self.frames = frames  # frames per video in the call being computed
        self.active = True    # False while a call runs the plain UNet
        self.motion_scale = motion_scale
        self.entered = True   # False outside `Injection.evaluate` when the host sends the calls (wrap_forward=False)


class TemporalSlot(nn.Module):
    """The layer inserted into a UNet block; calls its motion module."""

    def __init__(self, module, state: RunState):
        super().__init__()
        self.module = module
        self.state = state

    def forward(self, x):
        if not self.state.active:
            return x
        if not self.state.entered:
            # Frames that skipped the windows and the frame count would be computed wrong, or not at all.
            raise MotionModuleError("the UNet ran with the motion module but outside AnimateDiff's evaluation "
                                    "(another extension replaced the model function it runs in?)")
        if self.module.temporal_transformer.norm.weight.device != x.device:
            # The WebUI's --lowvram/--medvram move UNet blocks between devices
            # as they run; a module inserted while its block sat elsewhere follows.
            self.module.to(x.device)
        return self.module(x, self.state.frames, self.state.motion_scale)


def _unet_levels(unet) -> int:
    mult = getattr(unet, "channel_mult", None)
    if mult is None:
        raise IncompatibleUNetError("the object given is not an ldm/sgm UNetModel (it has no channel_mult)")
    return len(mult)


def _describe_unet(levels: int) -> str:
    return "an SDXL UNet" if levels == 3 else "an SD1.x/2.x UNet"


def _block_channels(block) -> int:
    return next(layer.out_channels for layer in block if _is_resblock(layer))


def injection_points(unet, model):
    """[(block, index, motion_module)] in UNet order, validated against the model."""
    levels = _unet_levels(unet)
    module_family = "an SDXL" if model.is_sdxl else "an SD1.5"
    if (levels == 3) != model.is_sdxl or levels not in (3, 4):
        raise IncompatibleUNetError(
            f"cannot inject {module_family} motion module ({model.kind}, {model.name or 'in memory'}) into "
            f"{_describe_unet(levels)}: use a motion module made for this checkpoint's base model")

    points = []
    down_blocks = [b for b in unet.input_blocks if any(_is_resblock(layer) for layer in b)]
    up_blocks = list(unet.output_blocks)
    for blocks, modules in ((down_blocks, model.down_modules()), (up_blocks, model.up_modules())):
        if len(blocks) != len(modules):
            raise IncompatibleUNetError(
                f"the UNet has {len(blocks)} blocks where the {model.kind} motion module has {len(modules)} "
                "modules; the UNet layout is not the one this motion module was trained on")
        for block, module in zip(blocks, modules):
            before_upsample = type(block[-1]).__name__ == "Upsample"
            points.append((block, len(block) - 1 if before_upsample else len(block), module))
    mid = model.mid_module()
    if mid is not None:
        points.append((unet.middle_block, len(unet.middle_block) - 1, mid))

    for block, _, module in points:
        channels = _block_channels(block)
        if channels != module.channels:
            raise IncompatibleUNetError(
                f"channel mismatch: a UNet block has {channels} channels but its {model.kind} motion module "
                f"expects {module.channels}")
    return points


class Injection:
    """One motion model injected into one UNet. Use `inject()` unless you need
    to apply and remove in separate places (as the WebUI script does)."""

    def __init__(self, unet, model, frames: int = 16, context=None, motion_scale: float = 1.0, around_call=None,
                 step_cache=None, wrap_forward: bool = True):
        """`motion_scale` multiplies each motion module's residual: 1 is the
        module as trained, 0 the image model's features (but v1 and HotShot
        keep their GroupNorm over all frames), above 1 exaggerates motion.

        `around_call(frame_index, frames)`, if given, returns a context manager
        entered around each inner UNet call (one per context window), with the
        video frame of each row of that call: per-frame state kept outside the
        UNet's arguments (ControlNet's hints) is switched to those rows there.

        `step_cache` (a `stepcache.StepCache`, attached by the caller) is told
        each evaluation and each inner call with its rows' frames, so deep
        features are reused per frame under moving windows.

        `wrap_forward`: every call of the UNet is an evaluation (its forward
        is wrapped per instance). False: nothing is wrapped, the host sends
        each evaluation through `evaluate` from a hook of its own (Forge's
        model function wrapper), and a UNet call that bypasses it fails
        rather than run frames outside their windows."""
        self.unet = unet
        self.around_call = around_call
        self.step_cache = step_cache
        self.model = model
        self.context = context
        self.state = RunState(frames, motion_scale)
        self._frames = frames
        self._points = injection_points(unet, model)
        self._slots = []
        self._gn_patch = None
        self._previous_forward = None
        self._applied = False
        self._warned_batch = False
        self._runner = None
        self._wrap_forward = wrap_forward
        self.frames = frames  # validates

    # -- frame count ---------------------------------------------------------
    @property
    def frames(self) -> int:
        """Frames per video in the batches the UNet will receive."""
        return self._frames

    @frames.setter
    def frames(self, value: int):
        value = int(value)
        if value < 1:
            raise FrameCountError(f"frames must be at least 1, got {value}")
        per_call = value if self.context is None else min(value, self.context.length)
        if per_call > self.model.max_frames:
            hint = ("use context windows (a context batch size) of at most "
                    f"{self.model.max_frames} frames" if self.context is None else
                    f"lower the context batch size to {self.model.max_frames} or less")
            raise FrameCountError(
                f"{per_call} frames in one pass exceed what the {self.model.kind} motion module supports "
                f"({self.model.max_frames}, its position-encoding length): {hint}")
        self._frames = value

    # -- apply / remove ------------------------------------------------------
    def apply(self):
        if self._applied:
            return self
        if getattr(self.unet, MARKER, None) is not None:
            raise MotionModuleError("a motion module is already injected into this UNet; remove it first")
        # A fresh window schedule per sampling run: the grid's shift counts steps.
        self._runner = WindowRunner(self.context) if self.context is not None else None
        self._warned_batch = False
        try:
            for block, index, module in self._points:
                slot = TemporalSlot(module, self.state)
                block.insert(index, slot)
                self._slots.append((block, slot))
            if self.model.joint_groupnorm:
                self._gn_patch = JointGroupNormPatch(joint_groupnorm_targets(self.unet), self.state)
                self._gn_patch.apply()
            if self._wrap_forward:
                self._previous_forward = self.unet.__dict__.get("forward")
                self.unet.forward = self._forward
            else:
                self.state.entered = False
            setattr(self.unet, MARKER, self)
            self._applied = True
        except BaseException:
            self._undo()
            raise
        return self

    def remove(self):
        """Restore the UNet exactly; safe to call more than once."""
        self._undo()

    def _undo(self):
        for block, slot in reversed(self._slots):
            for i, layer in enumerate(block):
                if layer is slot:
                    del block[i]
                    break
        self._slots.clear()
        if self._gn_patch is not None:
            self._gn_patch.remove()
            self._gn_patch = None
        # Only take our forward off if nobody wrapped it since; if someone did,
        # it stays in their chain but passes straight through (see _forward).
        if self._wrap_forward and self.unet.__dict__.get("forward") == self._forward:
            if self._previous_forward is None:
                del self.unet.__dict__["forward"]
            else:
                self.unet.forward = self._previous_forward
        if self.unet.__dict__.get(MARKER) is self:
            del self.unet.__dict__[MARKER]
        self._applied = False

    # -- the UNet forward while injected ------------------------------------
    def _plain_forward(self, *args, **kwargs):
        if self._previous_forward is not None:
            return self._previous_forward(*args, **kwargs)
        return type(self.unet).forward(self.unet, *args, **kwargs)

    def _forward(self, x, *args, **kwargs):
        return self.evaluate(self._plain_forward, x, args, kwargs)

    def evaluate(self, call, x, args=(), kwargs=None, unet_view=None):
        """One evaluation of the model on `x` (videos * frames rows, each
        video's frames in order): `call(x, *args, **kwargs)` computes rows,
        here once per context window with each window's rows of every per-row
        argument. `unet_view(args, kwargs)` gives the arguments as the UNet
        receives them (timesteps, context, y), for the step cache, when `call`
        takes others (Forge's apply_model takes sigmas)."""
        kwargs = {} if kwargs is None else kwargs
        if not self._applied:
            return call(x, *args, **kwargs)
        frames = self._frames
        if x.shape[0] % frames:
            if not self._warned_batch:
                log.warning("AnimateDiff: a UNet call with %d images is not a multiple of %d frames "
                            "(a per-image pass such as a face detailer?); running it without the motion "
                            "module", x.shape[0], frames)
                self._warned_batch = True
            self.state.active = False
            try:
                return call(x, *args, **kwargs)
            finally:
                self.state.active = True
        if self.step_cache is not None:
            self.step_cache.begin_eval()
        entered, self.state.entered = self.state.entered, True
        try:
            window_call = partial(self._call_with_frames, call, unet_view)
            if self._runner is not None and frames > self._runner.length:
                return self._runner(window_call, x, frames, args, kwargs)
            return window_call(frames, x, args, kwargs, frames_of_rows(x.shape[0], frames, x.device))
        finally:
            self.state.entered = entered

    def _call_with_frames(self, call, unet_view, len_frames, x, args, kwargs, frame_index):
        self.state.frames = len_frames
        with ExitStack() as stack:
            if self.around_call is not None:
                stack.enter_context(self.around_call(frame_index, self._frames))
            if self.step_cache is not None:
                unet_args, unet_kwargs = unet_view(args, kwargs) if unet_view is not None else (args, kwargs)
                stack.enter_context(self.step_cache.call(x, unet_args, unet_kwargs, frame_index, len_frames))
            return call(x, *args, **kwargs)


@contextmanager
def inject(unet, model, frames: int = 16, context=None, motion_scale: float = 1.0, around_call=None,
           step_cache=None, wrap_forward: bool = True):
    """Inject `model` into `unet` for the `with` block; always restored on exit."""
    injection = Injection(unet, model, frames=frames, context=context, motion_scale=motion_scale,
                          around_call=around_call, step_cache=step_cache, wrap_forward=wrap_forward).apply()
    try:
        yield injection
    finally:
        injection.remove()


def is_injected(unet) -> bool:
    return getattr(unet, MARKER, None) is not None


def remove_any(unet) -> bool:
    """Remove a leftover injection (e.g. after a crash); True if there was one."""
    injection = getattr(unet, MARKER, None)
    if injection is None:
        return False
    injection.remove()
    return True

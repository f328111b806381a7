"""Per-generation AnimateDiff parameters: declared once, validated once.

Each parameter is one field of ``AnimateDiffParams`` whose metadata (a
``Spec``) holds everything else known about it: value kind with range or
choices, UI label and hover hint, component, API aliases and infotext rule.
The validator, the UI (``animatediff_webui/ui.py``), the infotext writer and
parser (``infotext.py``), the parameter listing of the API and the README
table (``docs.py``) are all derived from these declarations.

The three ways parameters arrive:

* the UI: one component per parameter, handed to the script positionally in
  field order (``PARAM_ORDER``);
* the API: ``alwayson_scripts: {"AnimateDiff": {"args": [{...}]}}``, a dict in
  the first slot (the other slots keep their UI defaults);
* the ``webuiapi`` PyPI client, which sends ``{"args": [False]}`` with every
  txt2img call, i.e. a bare bool in the model slot.

``from_script_args`` tells these apart; every path ends in
``AnimateDiffParams.validate``. ``resolve`` then derives the per-run values
once (``ResolvedParams``); later stages take those typed values as they are.

WebUI-independent on purpose: the same rules apply to the UI, the HTTP API,
infotext pasting and the tests.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..context.plan import CLOSED_LOOP_MODES, stride_levels
from ..video.formats import FILE_FORMATS, FRAME_FORMATS
from ..errors import ParamError
from ..freeinit import FILTERS as FREEINIT_FILTERS
from ..prompt_travel import INTERPOLATIONS
from ..video.interpolation import METHODS as INTERP_METHODS
from ..values import (Bool, Choice, ChoiceList, Float, ImageValue, Int, Kind, SafeName, Text, VideoFile, parse_int,
                     show)

logger = logging.getLogger(__name__)

Warn = Callable[[str], Any]

# "Frame" is an API flag (return the frames too), not a file.
FORMAT_CHOICES = (*FILE_FORMATS, "Frame")
DEFAULT_FORMATS = ("GIF", "PNG")
VIDEO_LENGTH_MAX = 10000
# Videos sampled together in one WebUI batch; memory grows with it.
VIDEOS_PER_BATCH_MAX = 8
# The motion module's own position-encoding limit is checked against the
# chosen module; this is only a sanity bound.
CONTEXT_MAX = 64
# Chosen by benchmarks/step_cache.py --sweep (README, Performance).
DEFAULT_CACHE_DEPTH = 0
DEFAULT_CACHE_EARLY = 0.0


@dataclass(frozen=True)
class Spec:
    """Everything declared about one parameter besides its name and default.

    ui: the component kind ("model", "checkbox", "checkboxes", "number",
        "slider", "radio", "video", "textbox", "image", "hidden").
    infotext: "always" (written and pasted), "img2img" (written and pasted
        in img2img only), "when_set" (written when not the default, and
        pasted), "if_set" (written when not the default, never pasted:
        per-request values) or "never".
    resolved: the ``ResolvedParams`` attribute whose value the infotext
        records: what ran (16 frames, not 0 = automatic; the frames per
        pass, the overlap and the dilation levels actually used).
    img2img: the control is shown in the img2img tab only.
    range_text / default_text: README wording where the kind's own is not
        what a user needs to read.
    elem: the control's elem_id suffix where it is not the name with "-"
        for "_" (the reference extension's ids, kept for user styles).
    below: another parameter this one must stay below (its upper bound is
        that value - 1); the kind's own bound is then only a sanity cap.
    setting: the ``animatediff_*`` setting that gives the UI control its
        initial value (and the run its value when the request leaves it empty).
    """

    kind: Kind
    label: str
    hint: str
    ui: str
    aliases: tuple[str, ...] = ()
    infotext: str = "always"
    resolved: str = ""
    img2img: bool = False
    step: float | None = None
    range_text: str = ""
    default_text: str = ""
    elem: str = ""
    below: str = ""
    setting: str = ""

    def elem_suffix(self, name: str) -> str:
        return self.elem or name.replace("_", "-")

    @property
    def pasted(self) -> bool:
        return self.infotext in ("always", "img2img", "when_set")


def param(default, kind: Kind, label: str, hint: str, ui: str, **more) -> Any:
    """A dataclass field carrying its Spec."""
    spec = Spec(kind, label, hint, ui, **more)
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"spec": spec})
    return field(default=default, metadata={"spec": spec})


_LATENT_POWER = Float(0.1, 10.0)
_LATENT_SCALE = Float(1.0, 128.0)


@dataclass
class AnimateDiffParams:
    """Everything one AnimateDiff generation needs from the user.

    Field names are the reference extension's API keys and their order is its
    positional order, so existing API scripts keep working: new parameters
    are only ever added after ``request_id``.
    """

    model: str = param(
        "", Text(), "Motion module",
        "Motion-module file, relative to the model folder (sub/mm.safetensors); a bare file name that exists "
        "only once in a subfolder is accepted. Names cannot leave the folder. The UI lists the modules for the "
        "loaded checkpoint's family (SD1.5 or SDXL), read again each time the list is opened.",
        "model", aliases=("motion_module",), elem="motion-module", range_text="file name in the model folder",
        default_text='UI: first listed file; API: `""` = first file for the loaded checkpoint\'s family')
    format: list = param(
        list(DEFAULT_FORMATS), ChoiceList(FORMAT_CHOICES, required=FRAME_FORMATS), "Save format",
        "Output formats. At least one of GIF, MP4, WEBP, WEBM, PNG is required. TXT writes the infotext beside "
        "the video. Frame (API only) also returns the frames.",
        "checkboxes", aliases=("formats", "save_format"), infotext="never", elem="save-format",
        setting="animatediff_default_save_formats",
        default_text="setting `animatediff_default_save_formats` (`GIF`, `PNG`)")
    enable: bool = param(
        False, Bool(), "Enable AnimateDiff",
        "Master switch. While enabled, the WebUI batch size is replaced by the number of frames times Videos per "
        "batch; Batch count gives several batches.", "checkbox", aliases=("enabled",))
    video_length: int = param(
        0, Int(0, VIDEO_LENGTH_MAX), "Number of frames (0 = context batch size or source video)",
        "0 = automatic: the frame count of the video source/path when one is given, otherwise the context "
        "batch size. A video source caps the length at its frame count. More frames than the context batch "
        "size are generated in overlapping context windows.",
        "number", aliases=("number_of_frames",), resolved="video_length")
    fps: int = param(8, Int(1, 240), "FPS", "Playback rate of every format.", "number")
    loop_number: int = param(
        0, Int(0, 10000), "Display loop number (0 = forever)",
        "GIF/WEBP: 0 loops forever, N shows the animation N times in total. MP4/WEBM have no loop flag.",
        "number", aliases=("display_loop_number",))
    closed_loop: str = param(
        "R-P", Choice(tuple(CLOSED_LOOP_MODES)), "Closed loop",
        "How context windows treat the end of the clip. " + " ".join(
            f"{mode}: {meaning}." for mode, meaning in CLOSED_LOOP_MODES.items())
        + " For a clip that fits in one window, A appends the reversed frames (ping-pong).", "radio")
    batch_size: int = param(
        16, Int(1, CONTEXT_MAX), "Context batch size",
        "Frames the motion module sees in one pass. The frames per pass (this, or fewer frames for a shorter "
        "video) must not exceed the module's position-encoding length: 24 for v1 and HotShot-XL, 32 for v2, "
        "v3 and AnimateDiff-SDXL, 64 for AnimateLCM.", "slider", aliases=("context_batch_size",), step=1,
        resolved="context_length")
    stride: int = param(
        1, Int(1, 16), "Stride",
        "Number of dilation levels of the context windows: 1 = contiguous windows only, 2 adds windows of "
        "every 2nd frame, 3 also every 4th frame, and so on, capped at what the clip length needs.", "number",
        resolved="stride")
    overlap: int = param(
        -1, Int(-1, CONTEXT_MAX - 1), "Overlap (-1 = context / 4)",
        "Frames shared by neighbouring context windows. -1 = context batch size // 4. Must be smaller than the "
        "context batch size.", "number", resolved="overlap", below="batch_size",
        range_text="−1 … context batch size − 1")
    interp: str = param(
        "Off", Choice(tuple(INTERP_METHODS)), "Frame interpolation",
        "FILM uses the FILM model of the Deforum extension (CUDA only); if it cannot run, a warning is logged "
        "and the frames stay as they are. Linear is a built-in cross-fade between neighbouring frames, with no "
        "motion estimation. Flow is built in and follows the motion: OpenCV's optical flow both ways, both "
        "frames warped to the in-between time and blended, each occluded or border area taken from the frame "
        "that shows it; on the CPU, no model (without OpenCV it is skipped with a warning, like FILM). FPS is "
        "not changed, so raise it to keep the duration.",
        "radio", aliases=("interp_choice", "frame_interpolation"), elem="interp-choice")
    interp_x: int = param(
        10, Int(2, 100), "Interp X",
        "About X times as many frames: round((N·X − N)/(N − 1)) frames go between each pair of the N frames.",
        "number")
    video_source: str | None = param(
        None, VideoFile(), "Video source",
        "Video-to-video: every ControlNet unit that has no input of its own is controlled by this video, frame "
        "i by frame i (needs ControlNet). Also sets the frame count: with Number of frames 0 all the video's "
        "frames are used, a larger number is capped at it. Uploading a video copies its frame count and FPS "
        "into Number of frames and FPS.", "video", infotext="never",
        range_text="video file (API: a path on the server, or base64)")
    video_path: str = param(
        "", Text(), "Video path (folder of frames)",
        "Like Video source, with a folder of frames on the server (images only, all one size, natural order). "
        "Used only when Video source is empty.", "textbox", infotext="never", range_text="folder on the server")
    latent_power: float = param(
        1.0, _LATENT_POWER, "Latent power",
        "img2img: how fast frames move away from the init image. Frame i keeps max(0, 1 − i^power / scale) of "
        "the image's latent.", "slider", infotext="img2img", img2img=True, step=0.1)
    latent_scale: float = param(
        32.0, _LATENT_SCALE, "Latent scale",
        "img2img: a higher scale keeps the frames closer to the init image for longer.",
        "slider", infotext="img2img", img2img=True, step=1)
    last_frame: object = param(
        None, ImageValue(), "Optional last frame (leave empty to not use)",
        "img2img: an image for the video to end on, blended in from the end with the two last-frame sliders.",
        "image", infotext="never", img2img=True, range_text="image (API: base64 or data URL)")
    latent_power_last: float = param(
        1.0, _LATENT_POWER, "Latent power for the last frame", "Like Latent power, counted from the end.",
        "slider", infotext="img2img", img2img=True, step=0.1)
    latent_scale_last: float = param(
        32.0, _LATENT_SCALE, "Latent scale for the last frame", "Like Latent scale, counted from the end.",
        "slider", infotext="img2img", img2img=True, step=1)
    request_id: str = param(
        "", SafeName(max_len=128), "Request id",
        "API only: appended to output file names and written to the infotext.", "hidden", infotext="if_set",
        range_text='≤ 128 characters, none of `/ \\ : * ? " < > |` or control characters')

    prompt_interp: str = param(
        "", Choice(("", *INTERPOLATIONS)), "Prompt travel interpolation",
        "How frames between two keyframes of a travel prompt (lines such as \"8: a dog\") mix the keyframes' "
        "conditionings: slerp (spherical; keeps their magnitude) or lerp (linear). Empty = setting "
        "animatediff_prompt_interp (slerp). Written to the infotext when it is not slerp.",
        "radio", infotext="when_set", setting="animatediff_prompt_interp")
    freenoise: bool = param(
        False, Bool(), "FreeNoise",
        "For videos longer than the context batch size: the starting noise of every later window is a shuffled "
        "reuse of the frames one context before it (FreeNoise), so long videos stay coherent. Only the first "
        "context's frames then use their own seeds.", "checkbox", infotext="when_set")
    motion_scale: float = param(
        1.0, Float(0.0, 2.0), "Motion scale",
        "Strength of the motion: each motion module's contribution is multiplied by this. 0 gives the image "
        "model's frames (v1 and HotShot-XL still normalise over all frames), 1 the module as trained, above 1 "
        "exaggerates the motion. Written to the infotext when it is not 1.", "slider", step=0.05,
        infotext="when_set")
    freeinit_enable: bool = param(
        False, Bool(), "FreeInit",
        "Sample the video several times; each time after the first starts from noise whose low frequencies "
        "come from the previous result (FreeInit), for more consistent frames. Costs one sampling per "
        "iteration; hires fix runs once, after the last.", "checkbox", infotext="when_set")
    freeinit_filter: str = param(
        "butterworth", Choice(FREEINIT_FILTERS), "FreeInit filter",
        "The low-pass filter that decides which frequencies the next iteration keeps: butterworth (smooth), "
        "gaussian (smoother), ideal and box (sharp cut-offs).", "radio", infotext="when_set")
    freeinit_ds: float = param(
        0.25, Float(0.0, 1.0), "FreeInit spatial stop frequency",
        "Spatial cut-off of the filter (0-1, as a share of the highest frequency): higher keeps more of the "
        "previous result's layout. 0 keeps nothing.", "slider", step=0.125, infotext="when_set")
    freeinit_dt: float = param(
        0.25, Float(0.0, 1.0), "FreeInit temporal stop frequency",
        "Temporal cut-off of the filter (0-1): higher keeps more of the previous result's motion. 0 keeps "
        "nothing.", "slider", step=0.125, infotext="when_set")
    freeinit_iters: int = param(
        3, Int(1, 5), "FreeInit iterations",
        "Samplings in all, the first included (1 = FreeInit has no effect).", "slider", step=1,
        infotext="when_set")
    freeinit_fast: bool = param(
        False, Bool(), "FreeInit fast",
        "Fewer steps in the early iterations (steps × k / iterations in iteration k), all of them in the last.",
        "checkbox", infotext="when_set")
    mask_path: str = param(
        "", Text(), "Mask path (folder of masks)",
        "Video-to-video inpainting: a folder of masks on the server, given to every ControlNet unit that takes "
        "its frames from Video source / Video path (frame i gets mask i; a single mask is used for all).",
        "textbox", infotext="never", range_text="folder on the server")
    deepcache_interval: int = param(
        1, Int(1, 10), "Step cache interval (1 = off)",
        "Speed: run the whole UNet every N-th sampling step and, on the steps between, only its shallow blocks "
        "fed with the deep features of the last full step (DeepCache, kept per frame). 1 computes every step "
        "exactly; 3 is about twice as fast with a small change to the video.", "slider", step=1,
        infotext="when_set")
    deepcache_depth: int = param(
        DEFAULT_CACHE_DEPTH, Int(0, 10), "Step cache depth",
        "How many input blocks after the first (and the output blocks that mirror them) still run on cached "
        "steps: 0 is the fastest, higher keeps more of each step exact. At most the UNet's input blocks - 2 "
        "(10 for SD1.5, 7 for SDXL).", "slider", step=1, infotext="when_set")
    deepcache_early: float = param(
        DEFAULT_CACHE_EARLY, Float(0.0, 1.0), "Step cache full early steps",
        "Share of the first sampling steps that always run in full, where the layout of the picture is decided.",
        "slider", step=0.05, infotext="when_set")
    videos_per_batch: int = param(
        1, Int(1, VIDEOS_PER_BATCH_MAX), "Videos per batch",
        "Videos sampled together in one WebUI batch (its batch size becomes frames × this), each written, shown "
        "and returned as a video of its own. Each is the video Batch count would give in its place: the j-th "
        "video of the request starts at seed + j × frames, with the same prompt travel, context windows and "
        "init image. Costs the same time as Batch count on a CPU; can be faster on a GPU that one video leaves "
        "partly idle. Memory grows with it. Written to the infotext when it is not 1.", "slider", step=1,
        infotext="when_set")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, strict: bool | None = None) -> AnimateDiffParams:
        """Normalise every field in place; raise ParamError when invalid.

        ``strict`` defaults to ``enable``: a disabled extension must never
        block a generation, so for disabled params types are coerced
        best-effort (unusable values fall back to defaults) and ranges are
        not checked. ``enable`` itself is always checked strictly: we must
        know whether to run.
        """
        self.enable = coerce_field("enable", self.enable)
        if strict is None:
            strict = self.enable
        for name in PARAM_ORDER:
            if name != "enable":
                setattr(self, name, self._coerced(name, strict))
        if strict:
            for name, spec in SPECS.items():
                if spec.below:
                    self._check_below(name, spec)
        return self

    def _check_below(self, name: str, spec: Spec) -> None:
        # overlap < batch_size: windows advance by batch_size - overlap frames,
        # and a step of zero or less made the reference crash or go black.
        high = getattr(self, spec.below) - 1
        value = getattr(self, name)
        if not spec.kind.low <= value <= high:
            raise ParamError(name, f"'{name}' must be an integer between {spec.kind.low} and {high} "
                                   f"({SPECS[spec.below].label.lower()} - 1), got {show(value)}")

    def _coerced(self, name: str, strict: bool) -> Any:
        value = getattr(self, name)
        try:
            # A bound set by another field is checked with that field's value.
            return coerce_field(name, value, check_range=strict and not SPECS[name].below)
        except ParamError:
            if strict:
                raise
            logger.debug("AnimateDiff disabled: ignoring unusable %s=%s", name, show(value))
            return default_of(name)

    def resolve(self, source_frames: int | None = None) -> ResolvedParams:
        """Derived per-run values; see ResolvedParams."""
        self.validate(strict=True)
        return ResolvedParams.from_params(self, source_frames)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe echo in API key form.

        ``last_frame`` is left out: it may be a multi-megabyte image, and
        leaving it out keeps ``from_dict(p.to_dict())`` a faithful copy of
        everything else.
        """
        out = {name: getattr(self, name) for name in PARAM_ORDER if name != "last_frame"}
        out["format"] = list(self.format)
        return out


FIELDS = {f.name: f for f in dataclasses.fields(AnimateDiffParams)}
SPECS: dict[str, Spec] = {name: f.metadata["spec"] for name, f in FIELDS.items()}
# Positional order of the UI components (and of positional API args).
PARAM_ORDER = tuple(FIELDS)
# Other spellings users send for the same keys, compared after _normalise_key.
KEY_ALIASES = {alias: name for name, spec in SPECS.items() for alias in spec.aliases}


def default_of(name: str) -> Any:
    spec = FIELDS[name]
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return spec.default


def coerce_field(name: str, value: Any, *, check_range: bool = True) -> Any:
    """Coerce one parameter value to its canonical type (and check its range).

    Shared by validate() and the infotext parser so both accept exactly the
    same spellings. Cross-field limits (overlap < batch_size) are not checked
    here.
    """
    spec = SPECS.get(name)
    if spec is None:
        raise ParamError(name, f"unknown parameter '{name}'")
    try:
        parsed = spec.kind.parse(value)
    except (ValueError, TypeError, OverflowError):
        parsed = _INVALID
    if parsed is _INVALID or (check_range and not spec.kind.allows(parsed)):
        raise ParamError(name, f"'{name}' must be {spec.kind.describe()}, got {show(value)}")
    return parsed


_INVALID = object()


# --------------------------------------------------------------------------
# Derived values.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedParams:
    """Values computed once per generation from validated params.

    * video_length: frames to generate (0 resolved to the source frame count,
      or to batch_size without a source).
    * context_length: frames per motion-module window, never more than the
      video (so short videos need no padding).
    * overlap: -1 resolved to context_length // 4, always < context_length;
      0 when the clip is one window (no windows overlap).
    * stride: the dilation levels that run (the stride capped at what the
      clip needs; 1 for one window).
    * videos: videos per WebUI batch (videos_per_batch).
    * webui_batch_size: the WebUI batch size to use. Exactly video_length x
      videos (video-major: frame i of video k is row k * video_length + i);
      padding up to batch_size was the reference's bug #213. The motion
      module's frame limit is per video: it never sees two videos at once.
    * ping_pong: closed_loop 'A' on a single-window clip appends the reversed
      frames at output time.
    """

    video_length: int
    context_length: int
    overlap: int
    stride: int
    closed_loop: str
    webui_batch_size: int
    ping_pong: bool
    wants_frames: bool
    file_formats: tuple[str, ...]
    videos: int = 1

    @classmethod
    def from_params(cls, params: AnimateDiffParams, source_frames: int | None = None) -> ResolvedParams:
        video_length = _resolve_video_length(params, source_frames)
        context_length = min(params.batch_size, video_length)
        windowed = video_length > context_length
        return cls(
            video_length=video_length,
            context_length=context_length,
            overlap=resolve_overlap(params.overlap, context_length) if windowed else 0,
            stride=stride_levels(video_length, context_length, params.stride),
            closed_loop=params.closed_loop,
            webui_batch_size=video_length * params.videos_per_batch,
            ping_pong=params.closed_loop == "A" and video_length <= params.batch_size,
            wants_frames="Frame" in params.format,
            file_formats=tuple(name for name in params.format if name != "Frame"),
            videos=params.videos_per_batch,
        )


def _resolve_video_length(params: AnimateDiffParams, source_frames: int | None) -> int:
    if source_frames is None:
        return params.video_length or params.batch_size
    try:
        available = parse_int(source_frames)
    except ValueError:
        raise ParamError("video_source", f"source frame count must be an integer, got {show(source_frames)}") from None
    if available < 1:
        raise ParamError("video_source", "the video source has no frames")
    # A source caps the length: frames past its end would have no control image.
    length = min(params.video_length, available) if params.video_length else available
    if length > VIDEO_LENGTH_MAX:
        raise ParamError(
            "video_length",
            f"the video source has {available} frames, more than the maximum of "
            f"{VIDEO_LENGTH_MAX}; set 'video_length' to use only the first frames",
        )
    return length


def check_context_fits(resolved: ResolvedParams, max_frames: int, module: str) -> None:
    """The frames of one pass must fit the module's position encoding."""
    if resolved.context_length > max_frames:
        raise ParamError("batch_size", f"'batch_size' (context batch size) must be at most {max_frames} for "
                                       f"{module} (its position-encoding length), got {resolved.context_length}")


# The deepest step-cache depth per checkpoint family: its input blocks - 2.
CACHE_MAX_DEPTH = {False: 10, True: 7}


def check_cache_depth(params: AnimateDiffParams, is_sdxl: bool) -> None:
    """The step-cache depth must leave at least one deep input block."""
    if params.deepcache_interval > 1:
        check_cache_depth_value(params.deepcache_depth, is_sdxl)


def check_cache_depth_value(depth: int, is_sdxl: bool) -> None:
    high = CACHE_MAX_DEPTH[bool(is_sdxl)]
    if depth > high:
        raise ParamError("deepcache_depth", f"'deepcache_depth' must be an integer between 0 and {high} for an "
                                            f"{'SDXL' if is_sdxl else 'SD1.5'} checkpoint, got {depth}")


def resolve_overlap(overlap: int, context_length: int) -> int:
    """The overlap that runs: -1 means context // 4; always below the context."""
    if overlap == -1:
        overlap = context_length // 4
    return max(0, min(overlap, context_length - 1))


# --------------------------------------------------------------------------
# Entry points.
# --------------------------------------------------------------------------


def _normalise_key(key: str) -> str:
    return key.strip().lower().replace("-", "_").replace(" ", "_")


def _canonical_key(key: Any) -> str | None:
    if not isinstance(key, str):
        return None
    name = _normalise_key(key)
    if name in SPECS:
        return name
    return KEY_ALIASES.get(name)


def from_dict(d: Mapping[str, Any], warn: Warn | None = None) -> AnimateDiffParams:
    """API dict form -> validated params.

    Unknown keys are ignored with one warning (the reference raised
    TypeError, which broke clients whenever keys were added or renamed).
    An exact key wins over an alias of the same parameter.
    """
    warn = logger.warning if warn is None else warn
    if not isinstance(d, Mapping):
        raise ParamError("args", f"arguments must be a dict, got {type(d).__name__}")
    values: dict[str, Any] = {}
    aliased: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in d.items():
        name = _canonical_key(key)
        if name is None:
            unknown.append(repr(key))
        elif name == key:
            values[name] = value
        else:
            aliased.setdefault(name, value)
    for name, value in aliased.items():
        values.setdefault(name, value)
    if unknown:
        warn(f"AnimateDiff: ignoring unknown parameter(s): {', '.join(unknown)}")
    if values and "enable" not in values:
        warn("AnimateDiff: no 'enable' key given, so AnimateDiff stays disabled; add \"enable\": true")
    return AnimateDiffParams(**values)


def from_script_args(args: Sequence[Any] | None, warn: Warn | None = None) -> AnimateDiffParams:
    """What the WebUI passes to the script -> validated params.

    * ``args[0]`` a dict: API dict form; the other slots are the UI defaults
      the WebUI filled in and are ignored.
    * ``args[0]`` an AnimateDiffParams: a revalidated copy.
    * ``args[0]`` a bool: the ``webuiapi`` client's ``[False]`` landed in the
      model slot. It is the enable flag; the other slots are read positionally.
    * otherwise: positional values in PARAM_ORDER.
    """
    warn = logger.warning if warn is None else warn
    args = list(args or ())
    if not args:
        return AnimateDiffParams()
    head = args[0]
    if isinstance(head, Mapping):
        return from_dict(head, warn)
    if isinstance(head, AnimateDiffParams):
        return dataclasses.replace(head)
    if isinstance(head, bool):
        values = _positional(["", *args[1:]], warn)
        values["enable"] = head  # the enable slot holds only the UI default
        return AnimateDiffParams(**values)
    return AnimateDiffParams(**_positional(args, warn))


def _positional(args: list[Any], warn: Warn) -> dict[str, Any]:
    if len(args) > len(PARAM_ORDER):
        warn(f"AnimateDiff: ignoring {len(args) - len(PARAM_ORDER)} extra positional argument(s)")
    return dict(zip(PARAM_ORDER, args))

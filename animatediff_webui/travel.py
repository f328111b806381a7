"""Prompt travel in the WebUI: per-frame prompts in, interpolated conditionings out.

The WebUI encodes each frame's prompt (one encoding per distinct text), then
rebuilds the conditioning batch at every sampling step (prompt editing
included) and hands it to `on_cfg_denoiser` callbacks before it batches cond
and uncond. There each frame's row is replaced by its interpolation between
its keyframes' rows of that very step (`motion_module.prompt_travel`). The
original prompt goes back before infotexts are written, so PNGs, GIFs, TXT
files and pasting keep the user's multi-line prompt.
"""

import dataclasses

from modules import extra_networks, shared

from ..motion_module import prompt_travel
from . import run as run_module
from . import settings
from .log import logger


@dataclasses.dataclass
class Plan:
    travel: prompt_travel.Travel
    schedule: list
    method: str
    original_prompts: list = None
    original_hr_prompts: list = None
    warned: bool = False


def source_prompt(prompt):
    """The prompt text travel reads: a string, or the first of a list that
    another extension (Dynamic Prompts) made."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)) and prompt and isinstance(prompt[0], str):
        if prompt_travel.has_keyframes(prompt[0]):
            logger.warning("AnimateDiff: the prompt is a list (made by another extension); prompt travel reads its "
                           "first entry")
        return prompt[0]
    return ""


def parse(prompt, resolved):
    """The travel of a request's prompt, or None; ParamError('prompt') when malformed."""
    return prompt_travel.parse(source_prompt(prompt), resolved.video_length)


def prepare(p, run, method: str):
    """before_process: read the prompt (refusals happen here, before any work)."""
    travel = parse(p.prompt, run.resolved)
    if travel is None:
        return
    for warning in travel.warnings:
        logger.warning("%s", warning)
    r = run.resolved
    wrap = prompt_travel.wraps(r.video_length, r.context_length, r.closed_loop)
    run.travel = Plan(travel, prompt_travel.schedule(travel.keyframes, r.video_length, wrap), method)


def _styled(p, text):
    return shared.prompt_styles.apply_styles_to_prompt(text, p.styles)


def _with_all_tags(prompts):
    """The WebUI activates extra networks (LoRA) from a batch's first prompt
    only; give it the tags of every keyframe so none is dropped."""
    first = prompts[0]
    missing = [m.group(0) for text in prompts[1:] for m in extra_networks.re_extra_net.finditer(text)
               if m.group(0) not in first]
    return [" ".join([first, *dict.fromkeys(missing)])] + prompts[1:] if missing else prompts


def apply(p, run):
    """process(): each frame of every video gets its keyframe's styled prompt
    (after the WebUI set up its prompts, before it encodes them): the WebUI
    takes a batch's prompts as rows, videos per batch × frames of them."""
    plan = run.travel
    if plan is None:
        return
    frames = run.resolved.video_length
    per_frame = _with_all_tags([_styled(p, text) for text in plan.travel.frame_prompts(frames)])
    plan.original_prompts = list(p.all_prompts)
    p.all_prompts = per_frame * (run.resolved.videos * p.n_iter)
    if getattr(p, "enable_hr", False) and getattr(p, "all_hr_prompts", None):
        plan.original_hr_prompts = list(p.all_hr_prompts)
        if all(hr == full for hr, full in zip(p.all_hr_prompts, plan.original_prompts)):
            p.all_hr_prompts = list(p.all_prompts)


def restore(p, run):
    """postprocess_batch: the user's prompt back, for infotexts and files."""
    plan = run.travel
    if plan is None or plan.original_prompts is None:
        return
    p.all_prompts = plan.original_prompts
    if plan.original_hr_prompts is not None:
        p.all_hr_prompts = plan.original_hr_prompts


def _rows(cond):
    return cond["crossattn"].shape[0] if isinstance(cond, dict) else cond.shape[0]


def on_cfg_denoiser(params):
    p = getattr(params.denoiser, "p", None)
    current = run_module.get(p) if p is not None else None
    plan = getattr(current, "travel", None)
    if plan is None:
        return
    frames, rows = current.resolved.video_length, _rows(params.text_cond)
    if rows % frames:
        if not plan.warned:
            logger.warning("AnimateDiff: prompt travel skipped: the conditioning has %d rows for %d frames "
                           "(AND in the prompt?)", rows, frames)
            plan.warned = True
        return
    params.text_cond = prompt_travel.travel_rows(params.text_cond, frames, plan.schedule, plan.method)


def method(params) -> str:
    return params.prompt_interp or settings.opt("animatediff_prompt_interp")


"""Writing the videos after a run and putting them where UI and API expect them."""

import base64
import os

from modules import shared

from ..motion_module.video import VideoOptions, add_reverse, interpolate, save_video
from ..motion_module.video.failures import output_error

from . import player, settings, xyz
from .log import logger

GALLERY_FORMATS = ("GIF", "WEBP")  # formats the gallery can animate


def _video_options(run, infotext):
    return VideoOptions.from_settings(shared.opts, fps=run.params.fps, loop_number=run.params.loop_number,
                                      infotext=infotext)


def _frames_of_videos(res, run, n_iter):
    """One (frames, k) per generated video, and the images after them: at most
    videos-per-batch videos per batch, video k in rows k * video_length on
    (video-major across batches too, as the WebUI lists its images and seeds);
    ControlNet appends its detected maps to the images, and those are never a
    video."""
    frames = res.images[res.index_of_first_image:]
    length = run.resolved.video_length
    count = min(len(frames) // length, max(int(n_iter or 1), 1) * run.resolved.videos)
    return [(frames[k * length:(k + 1) * length], k) for k in range(count)], frames[count * length:]


def _finish_frames(frames, run):
    if run.resolved.ping_pong:
        frames = add_reverse(frames)
    if run.params.interp != "Off":
        deforum = os.path.join(os.path.dirname(settings.EXTENSION_ROOT), "deforum-for-automatic1111-webui")
        frames = interpolate(frames, run.params.interp_x, method=run.params.interp,
                             deforum_path=deforum if os.path.isdir(deforum) else None)
    return frames


def write(p, res, run):
    """Save every video of the run; replace res.images with what to show/return.

    Returns the OutputError for requested files that were not written, or
    None. A video whose batch was interrupted or skipped is not written
    unless the WebUI's "Save incomplete images" is on, as for its own images;
    its frames are shown and returned as they are."""
    formats = list(run.resolved.file_formats) + (["TXT"] if "TXT" in run.params.format else [])
    custom_png = settings.opt("animatediff_save_to_custom") or run.params.interp != "Off"
    if "PNG" in formats and not custom_png:
        formats.remove("PNG")  # the WebUI already saved the frames in its sample folder
    shown, infotexts, extra, extra_infotexts = [], [], [], []
    grid_cell = xyz.is_grid_cell(p)
    first = res.index_of_first_image
    videos_frames, others = _frames_of_videos(res, run, getattr(p, "n_iter", 1))
    written = []
    for frames, k in videos_frames:
        infotext = res.infotexts[first + k * run.resolved.video_length] if res.infotexts else res.info
        if k // run.resolved.videos in run.incomplete and not shared.opts.save_incomplete_images:
            logger.info("video %d was interrupted or skipped: its frames are returned, no file is written "
                        "(Settings > Saving images > Save incomplete images)", k + 1)
            kept = frames[:1] if grid_cell else frames
            shown += kept
            infotexts += [infotext] * len(kept)
            continue
        seed = res.all_seeds[k * run.resolved.video_length] if res.all_seeds else res.seed
        frames = _finish_frames(frames, run)
        saved = save_video(frames, formats, _video_options(run, infotext), p.outpath_samples, seed,
                           run.params.request_id)
        written.append(saved)
        videos = [saved.paths[f] for f in ("GIF", "MP4", "WEBP", "WEBM") if f in saved.paths]
        logger.info("saved %s", ", ".join(str(v) for v in videos) or "no video file")
        if grid_cell:
            # The X/Y/Z plot draws each cell's first image into its grid.
            shown.append(frames[0])
            infotexts.append(infotext)
        elif getattr(p, "is_api", False):
            # The API encodes PIL images itself and passes strings through (WebUI >= 1.7).
            shown += [_base64(v) for v in videos]
            infotexts += [infotext] * len(videos)
            if run.resolved.wants_frames:
                extra += frames
                extra_infotexts += [infotext] * len(frames)
        else:
            gallery = [str(saved.paths[f]) for f in GALLERY_FORMATS if f in saved.paths]
            shown += gallery or frames
            infotexts += [infotext] * len(gallery or frames)
    player.record(p, written)  # the result panel's player (UI generations only)
    res.images = shown + extra + others
    res.infotexts = infotexts + extra_infotexts + [res.info] * len(others)
    res.index_of_first_image = 0
    webui_png = ("PNG" in run.resolved.file_formats and not custom_png and shared.opts.samples_save
                 and not p.do_not_save_samples)
    return output_error(written, frames_folder=p.outpath_samples if webui_png else None)


def _base64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode("ascii")

"""img2img batch as one video: the input folder's images become the frames'
init images (and the mask folder's images their masks), in one generation.

ControlNet's img2img-batch hook calls `animatediff_i2i_batch` (through
`cn_compat`) when AnimateDiff is enabled; without ControlNet our own wrapper of
the WebUI's `process_batch` does the same. Units without input then take the
input folder as their control frames (`inputs.open_sources`).
"""

import functools
import os
import shutil
import tempfile

import torch

from ..motion_module.request.params import ParamError
from ..motion_module.video.source import list_frames, masks_for

from . import inputs
from .log import logger
from .view import get_animatediff_arg

INPUT_FIELD = "img2img batch input directory"
MASK_FIELD = "img2img batch inpaint mask directory"


def _upload_folder(files):
    """Uploaded batch files copied into one folder, as ControlNet reads folders."""
    folder = tempfile.mkdtemp(prefix="animatediff-upload-", dir=_ensure(inputs.work_folder()))
    for i, f in enumerate(files):
        path = getattr(f, "name", f)
        shutil.copyfile(path, os.path.join(folder, f"{i:05d}{os.path.splitext(path)[1].lower()}"))
    return folder


def _ensure(folder):
    os.makedirs(folder, exist_ok=True)
    return folder


def animatediff_i2i_batch(p, input, output_dir, inpaint_mask_dir, args, to_scale=False, scale_by=1.0,
                          use_png_info=False, png_info_props=None, png_info_dir=None):
    """The WebUI's `img2img.process_batch` signature; one generation for the whole folder."""
    from PIL import ImageOps

    from modules import images, processing
    from modules import scripts as webui_scripts

    processing.fix_seed(p)
    upload = None
    try:
        if isinstance(input, str):
            frames = list_frames(input.strip(), INPUT_FIELD)
        else:
            upload = _upload_folder(input or [])
            frames = list_frames(upload, INPUT_FIELD)
        masks = None
        if inpaint_mask_dir and inpaint_mask_dir.strip():
            masks = masks_for(frames, list_frames(inpaint_mask_dir.strip(), MASK_FIELD), MASK_FIELD)
        init_images = [ImageOps.exif_transpose(images.read(f)) for f in frames.files]
        if to_scale:
            p.width, p.height = int(init_images[0].width * scale_by), int(init_images[0].height * scale_by)
        p.init_images = init_images
        p.image_mask = images.read(masks[0]) if masks else None
        setattr(p, inputs.I2I_BATCH_ATTR, frames)
        p.animatediff_i2i_masks = masks
        if output_dir and output_dir.strip():
            p.outpath_samples = output_dir.strip()
            p.override_settings["save_to_dirs"] = False
        logger.info("img2img batch: %d images from %s as one video", len(frames), frames.folder)
        processed = webui_scripts.scripts_img2img.run(p, *args)
        return processed if processed is not None else processing.process_images(p)
    finally:
        if upload is not None:
            shutil.rmtree(upload, ignore_errors=True)


def prepare(p, video_length, videos=1):
    """before_process of an img2img-batch run: the first `video_length`
    images, and per-frame masks through `p.init` when the masks differ;
    with several videos per batch, every video takes the same images."""
    p.init_images = p.init_images[:video_length] * videos
    masks = (getattr(p, "animatediff_i2i_masks", None) or [])[:video_length] * videos
    if len(set(masks)) > 1:
        if getattr(p, "inpaint_full_res", False):
            raise ParamError("inpaint_full_res", "img2img batch with a different mask per frame needs Inpaint area "
                                                 "'Whole picture': 'Only masked' would crop each frame differently")
        p.init = functools.partial(_init_per_frame, p, p.init, masks)


def is_batch(p) -> bool:
    return getattr(p, inputs.I2I_BATCH_ATTR, None) is not None


def _init_per_frame(p, init, masks, all_prompts, all_seeds, all_subseeds):
    """The WebUI's img2img init once per frame (its own image and mask), the
    results stacked: latents, masks, overlays and image conditioning."""
    from modules import images

    images_in, batch_size = p.init_images, p.batch_size
    latents, keep, noise, conditioning, overlays, corrections = [], [], [], [], [], []
    try:
        for i, (image, mask) in enumerate(zip(images_in, masks)):
            p.init_images, p.image_mask, p.batch_size = [image], images.read(mask), 1
            p.overlay_images, p.color_corrections = None, None
            init(all_prompts, all_seeds[i:], all_subseeds[i:])
            latents.append(p.init_latent)
            keep.append(p.mask)
            noise.append(p.nmask)
            conditioning.append(p.image_conditioning)
            overlays += p.overlay_images or []
            corrections += p.color_corrections or []
    finally:
        p.init_images, p.batch_size = images_in, batch_size
    p.init_latent = torch.cat(latents)
    p.mask, p.nmask = torch.stack(keep), torch.stack(noise)
    p.image_conditioning = torch.cat(conditioning)
    p.overlay_images = overlays or None
    p.color_corrections = corrections or None


def install():
    """Our own img2img-batch path for WebUIs without ControlNet (ControlNet
    replaces `process_batch` with its hook, which calls us as well)."""
    from modules import img2img

    original = img2img.process_batch
    if getattr(original, "animatediff_wrapped", False):
        return

    @functools.wraps(original)
    def process_batch(p, *args, **kwargs):
        view = get_animatediff_arg(p)
        if view is not None and view.enable:
            view.is_i2i_batch = True
            return animatediff_i2i_batch(p, *args, **kwargs)
        return original(p, *args, **kwargs)

    process_batch.animatediff_wrapped = True
    img2img.process_batch = process_batch


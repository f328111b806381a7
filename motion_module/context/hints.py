"""Per-frame conditioning that lives outside the UNet's arguments.

ControlNet keeps its control images ("hints") on its own objects, one row per
frame of the video (or twice that, cond then uncond, when the WebUI batches
them), and feeds them to the UNet call unchanged. A call sees only some of the
video's rows: cond and uncond sent separately, or one context window. These
pure functions say which frame each row of a call is and pick the hint rows
that belong to it.
"""

import torch


def frames_of_rows(rows: int, frames: int, device=None) -> torch.Tensor:
    """Frame index of each row of a whole-video call: videos are `frames` rows each."""
    return torch.arange(rows, device=device) % frames


def hint_rows(hint, frame_index: torch.Tensor, video_length: int):
    """The rows of `hint` for a call whose row r shows frame `frame_index[r]`.

    A hint of one row (one image for every frame) is returned as it is. A hint
    of `video_length` rows per video, repeated for cond and uncond, has the
    same frames in each repeat, so the first repeat is indexed. Anything else
    is not a per-frame hint of this video and is refused."""
    if not isinstance(hint, torch.Tensor) or hint.dim() == 0 or hint.shape[0] == 1:
        return hint
    rows = hint.shape[0]
    if rows % video_length:
        raise ValueError(f"a ControlNet hint has {rows} rows, which is not one image or {video_length} frames "
                         f"(the video's length) per prompt; its control folder must hold at least as many "
                         f"images as the video has frames")
    return hint[:video_length].index_select(0, frame_index.to(hint.device))

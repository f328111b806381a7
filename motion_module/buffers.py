"""Memory for weights (a motion module's, a run's LoRA-patched ones) that goes
back to the system when freed."""

import math
import mmap

import torch


def mapped_empty(numel, dtype, device="cpu") -> torch.Tensor:
    """An uninitialised 1-D tensor; on the CPU in a memory mapping of its own.

    A module is hundreds of tensors of a few MiB. Allocated from the process
    heap, they stay with the allocator once freed: glibc and tcmalloc (the
    WebUI's launcher preloads it) both kept them, and the WebUI grew by about
    a module each time one was swapped for another. A mapping goes back to
    the system when the last tensor viewing it is freed."""
    if torch.device(device).type != "cpu" or numel == 0:
        return torch.empty(numel, dtype=dtype, device=device)
    private = {"flags": mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS} if hasattr(mmap, "MAP_PRIVATE") else {}
    return torch.frombuffer(mmap.mmap(-1, numel * dtype.itemsize, **private), dtype=dtype)


def mapped_views(shapes, dtype, device="cpu") -> list:
    """Uninitialised tensors of `shapes`, views of one `mapped_empty` buffer:
    freed whole when the last of them is."""
    sizes = [math.prod(shape) for shape in shapes]
    flat = mapped_empty(sum(sizes), dtype, device)
    views, offset = [], 0
    for shape, size in zip(shapes, sizes):
        views.append(flat[offset:offset + size].view(shape))
        offset += size
    return views

"""motion_module/buffers.py: weight memory that goes back to the system."""

import gc
import os

import pytest
import torch

from motion_module.buffers import mapped_empty

MIB = 2**20


def _resident_anon():
    # The process's resident anonymous memory: what a freed heap block keeps and an unmapped buffer gives back.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the resident memory from /proc")
def test_a_mapped_buffer_is_resident_while_used_and_returned_when_freed():
    gc.collect()
    before = _resident_anon()
    flat = mapped_empty(64 * MIB, torch.float32)  # 256 MiB
    views = [flat[i * MIB:(i + 1) * MIB].view(1024, 1024) for i in range(64)]
    for view in views:
        view.fill_(1.5)
    used = _resident_anon() - before
    assert used >= 250 * MIB, used / MIB
    assert flat.sum().item() == 1.5 * 64 * MIB
    del flat
    assert _resident_anon() - before >= 250 * MIB  # the views still hold it
    del views, view
    gc.collect()
    assert _resident_anon() - before < 16 * MIB, (_resident_anon() - before) / MIB


def test_a_mapped_buffer_holds_every_dtype_and_is_private():
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.uint8, torch.float8_e4m3fn):
        a, b = mapped_empty(1000, dtype), mapped_empty(1000, dtype)
        assert a.dtype == dtype and a.shape == (1000,) and a.device.type == "cpu"
        a.zero_()
        b.fill_(1)
        assert not torch.equal(a.float(), b.float())
    assert mapped_empty(0, torch.float32).numel() == 0

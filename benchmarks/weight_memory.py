"""Resident weight memory of a full-size motion module in each storage precision.

    python3 benchmarks/weight_memory.py            # v2 (the largest SD1.5 kind)
    python3 benchmarks/weight_memory.py --kind sdxl

Writes one random checkpoint of the kind in the official layout, loads it
with the project's loader in fp32, fp16, and fp16 with FP8 Linear weights
(the WebUI's FP8 option), and prints, side by side, the bytes its tensors
hold (parameters and position tables) and each precision's ratio to fp32.
"""

import argparse
import os
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import motion_module as mm  # noqa: E402
from motion_module.kinds import KINDS  # noqa: E402
from motion_module.synthetic import save_random_checkpoint  # noqa: E402

PRECISIONS = (("fp32", torch.float32, False), ("fp16", torch.float16, False), ("fp8 (Linear) + fp16", torch.float16,
                                                                               True))


def resident_bytes(model) -> int:
    tensors = {t.data_ptr(): t.untyped_storage().nbytes() for t in (*model.parameters(), *model.buffers())}
    return sum(tensors.values())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", default="v2", choices=sorted(KINDS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = save_random_checkpoint(os.path.join(folder, f"{args.kind}.safetensors"), args.kind)
        sizes = {}
        for label, dtype, fp8 in PRECISIONS:
            model = mm.load(path, dtype=dtype, fp8=fp8)
            sizes[label] = resident_bytes(model)
            del model
    print(f"{args.kind} motion module, resident weights:")
    for label, size in sizes.items():
        print(f"  {label:<20} {size / 2 ** 20:8.0f} MiB  {size / sizes['fp32']:.3f} x fp32")


if __name__ == "__main__":
    main()

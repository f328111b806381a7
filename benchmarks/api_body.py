"""What the API route wrapper costs an ordinary request, side by side.

    python3 benchmarks/api_body.py

For request bodies of several sizes (a txt2img carrying a base64 image, no
AnimateDiff arguments; without script arguments, and with another script's)
it times, in one run and interleaved, the bare route
and the same route behind animatediff_webui.asgi.wrap, both driven through
ASGI in 64 KiB chunks as uvicorn delivers them, and prints the median extra
time per megabyte of body.
"""

import argparse
import base64
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from asgi_timing import call, median_seconds, route  # noqa: E402

from animatediff_webui import asgi  # noqa: E402


# Ordinary requests: without script arguments, and with another script's.
KINDS = {"plain": {}, "other script": {"alwayson_scripts": {"ControlNet": {"args": [{"enabled": False}]}}}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=float, nargs="+", default=[1, 10, 50], help="body sizes in MB")
    ap.add_argument("--repeats", type=int, default=15, help="timed calls of each app per size (median)")
    args = ap.parse_args()
    wrapped = asgi.wrap(route, lambda body: sys.exit("an ordinary request reached the check"))
    print(f"{'body':>8} {'bare':>10} {'wrapped':>10} {'extra':>10} {'extra/MB':>10}  request")
    for size, (kind, extra) in ((s, k) for s in args.sizes for k in KINDS.items()):
        image = base64.b64encode(os.urandom(int(size * 1e6 * 3 / 4))).decode()
        body = json.dumps({"prompt": "a cat", "init_images": [image], **extra}).encode()
        mb = len(body) / 1e6
        bare_t, wrapped_t = [], []
        for _ in range(args.repeats):  # interleaved: machine noise hits both alike
            bare_t.append(median_seconds(lambda: call(route, body), 1))
            wrapped_t.append(median_seconds(lambda: call(wrapped, body), 1))
        bare, wrap = sorted(bare_t)[len(bare_t) // 2], sorted(wrapped_t)[len(wrapped_t) // 2]
        print(f"{mb:7.1f}M {bare * 1e3:8.2f}ms {wrap * 1e3:8.2f}ms {(wrap - bare) * 1e3:8.2f}ms "
              f"{(wrap - bare) * 1e3 / mb:8.3f}ms  {kind}")


if __name__ == "__main__":
    main()

"""Speed options measured on videos in a running WebUI (not a test: it prints figures).

    python3 benchmarks/webui_speed.py --url http://127.0.0.1:7860 --pid $(cat ~/webui-harness/webui.pid) \
        --model random_v2.safetensors [--cases cache,v2v,options] [--size 64] [--steps 12] \
        [--controlnet-model control_v11p_sd15_rand]

Runs on AUTOMATIC1111 and on Forge alike (the extension's status names the WebUI).

For each case it sends one txt2img request with AnimateDiff and measures, on
the server process (same machine): its CPU time (user + system, from
/proc/PID/stat) and its peak resident memory during the request (VmHWM after
resetting it through /proc/PID/clear_refs). Videos come back as frames
("Frame"), so each case's change is measured too: the mean absolute
difference of its frames from the exact run's (0-255), and the mean
frame-to-frame difference (temporal consistency: token merging works per
frame). The settings a case changes are put back after it.

Cases:
  plain:   the 16-frame video, and the same request as a plain batch of 16
           images with AnimateDiff off, alternately --repeats times (medians):
           what the motion module costs on top of the WebUI's own batch
           (README's A1111-against-Forge figures).
  cache:   16 frames at 12 steps; 24 frames at context 16, overlap 4; exact
           against deepcache_interval 3 (default depth and early share).
  v2v:     16 frames read from a generated source video (a square moving
           over a gradient), each frame controlled by sd-webui-controlnet
           (preprocessor none, --controlnet-model; on Forge the built-in ControlNet); exact against interval 3.
           Skipped with a note when --controlnet-model is not given.
  options: 16 frames with each cross-attention optimisation, token merging
           0.3 and 0.5, negative guidance minimum sigma, FP8 weights, and the
           step cache on top of the default (--options picks some of them).
"""

import argparse
import base64
import functools
import io
import json
import os
import sys
import tempfile
import time

import numpy as np
import requests
from PIL import Image

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def reset_peak(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def frames_of(out, count):
    # The last `count` images: after the video, or after a plain batch's grid.
    return np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(x))).convert("RGB"), dtype=np.float32)
                     for x in out["images"][-count:]])


class Server:
    def __init__(self, url, pid):
        self.url, self.pid = url.rstrip("/"), pid
        self.session = requests.Session()
        self.webui = self.session.get(self.url + "/animatediff/v1/status", timeout=60).json().get("webui", "?")

    def options(self, **values):
        current = self.session.get(self.url + "/sdapi/v1/options", timeout=60).json()
        if values:
            r = self.session.post(self.url + "/sdapi/v1/options", json=values, timeout=600)
            r.raise_for_status()
        return {k: current.get(k) for k in values}

    def video(self, body, frames):
        reset_peak(self.pid)
        before, start = cpu_seconds(self.pid), time.perf_counter()
        r = self.session.post(self.url + "/sdapi/v1/txt2img", json=body, timeout=3600)
        wall, cpu = time.perf_counter() - start, cpu_seconds(self.pid) - before
        r.raise_for_status()
        status = self.session.get(self.url + "/animatediff/v1/status", timeout=60).json()
        return frames_of(r.json(), frames), cpu, wall, peak_mib(self.pid), status.get("last_step_cache", {})


def body(args, frames, **ad):
    params = {"enable": True, "model": args.model, "video_length": frames, "format": ["GIF", "Frame"], **ad}
    return {"prompt": "a cat", "negative_prompt": "a dog", "steps": args.steps, "width": args.size,
            "height": args.size, "seed": args.seed, "sampler_name": "Euler", "cfg_scale": 7,
            "alwayson_scripts": {"AnimateDiff": {"args": [params]}}}


def consistency(frames):
    return float(np.abs(np.diff(frames, axis=0)).mean())


def row(name, frames, cpu, wall, peak, reference=None, base_cpu=None, cache=None):
    out = {"case": name, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "peak_rss_mib": round(peak),
           "frame_to_frame": round(consistency(frames), 2)}
    if base_cpu:
        out["speedup"] = round(base_cpu / cpu, 2)
    if reference is not None:
        out["change_from_exact"] = round(float(np.abs(frames - reference).mean()), 2)
    if cache:
        out["calls_full_cached"] = f"{cache.get('full')}/{cache.get('cached')}"
    print(json.dumps(out), flush=True)
    return out


def exact_and_cached(server, name, request, frames):
    """Exact, the neighbouring seed (the scale of a real change) and interval 3."""
    exact, cpu, wall, peak, _ = server.video(request(), frames)
    rows = [row(f"{name}: exact", exact, cpu, wall, peak)]
    neighbour = server.video({**request(), "seed": request()["seed"] + 1}, frames)[0]
    rows[-1]["neighbour_seed_change"] = round(float(np.abs(neighbour - exact).mean()), 2)
    cached, c_cpu, c_wall, c_peak, counts = server.video(request(deepcache_interval=3), frames)
    rows.append(row(f"{name}: step cache interval 3", cached, c_cpu, c_wall, c_peak, exact, cpu, counts))
    return rows


def cache_cases(server, args):
    rows = []
    for name, frames, extra in (("16 frames", 16, {}), ("24 frames, context 16, overlap 4", 24,
                                                          {"batch_size": 16, "overlap": 4})):
        rows += exact_and_cached(server, name, functools.partial(body, args, frames, **extra), frames)
    return rows


def plain_cases(server, args):
    """Video and plain batch alternately, --repeats rounds, medians: a shared
    machine's speed drifts between requests, and alternating spreads the drift
    over both."""
    video = body(args, 16)
    plain = {**video, "batch_size": 16, "alwayson_scripts": {}}
    runs = {"16-frame video": [], "plain batch of 16 images": []}
    for _ in range(args.repeats):
        for name, request in zip(runs, (video, plain)):
            runs[name].append(server.video(request, 16))
    rows = []
    for name, results in runs.items():
        middle = sorted(results, key=lambda r: r[1])[len(results) // 2]  # the run with the median CPU time
        rows.append(row(name, middle[0], middle[1], middle[2], max(r[3] for r in results)))
        rows[-1]["cpu_s_each"] = [round(r[1], 1) for r in results]
    rows[0]["cpu_over_plain"] = round(rows[0]["cpu_s"] / rows[1]["cpu_s"], 2)
    rows[0]["motion_module_cpu_s"] = round(rows[0]["cpu_s"] - rows[1]["cpu_s"], 1)
    return rows


def source_video(folder, count, size):
    """A square moving over a gradient, one PNG per frame."""
    y, x = np.mgrid[0:size, 0:size]
    for i in range(count):
        frame = np.stack([x * 255 // size, y * 255 // size, np.full_like(x, 128)], axis=-1).astype(np.uint8)
        left = i * (size - size // 4) // max(count - 1, 1)
        frame[size // 3:size // 3 + size // 4, left:left + size // 4] = 255
        Image.fromarray(frame).save(os.path.join(folder, f"frame{i:03d}.png"))
    return folder


def v2v_cases(server, args):
    if not args.controlnet_model:
        print("v2v: skipped (give --controlnet-model, a ControlNet model the WebUI lists)", flush=True)
        return []
    unit = {"enabled": True, "module": "None" if server.webui == "Forge" else "none", "model": args.controlnet_model, "weight": 1.0,
            "save_detected_map": False}
    with tempfile.TemporaryDirectory(prefix="webui_speed_v2v_") as folder:
        source_video(folder, 16, args.size)

        def request(**ad):
            out = body(args, 0, video_path=folder, **ad)
            out["alwayson_scripts"]["controlnet"] = {"args": [unit]}
            return out

        return exact_and_cached(server, "V2V 16 frames, ControlNet", request, 16)


OPTIONS = (
    ("sdp (default)", {"cross_attention_optimization": "sdp - scaled dot product"}, {}),
    ("sdp-no-mem", {"cross_attention_optimization": "sdp-no-mem - scaled dot product without memory efficient "
                                                    "attention"}, {}),
    ("sub-quadratic", {"cross_attention_optimization": "sub-quadratic"}, {}),
    ("Doggettx", {"cross_attention_optimization": "Doggettx"}, {}),
    ("V1", {"cross_attention_optimization": "V1 - original v1"}, {}),
    ("InvokeAI", {"cross_attention_optimization": "InvokeAI"}, {}),
    ("token merging 0.3", {"token_merging_ratio": 0.3}, {}),
    ("token merging 0.5", {"token_merging_ratio": 0.5}, {}),
    ("negative guidance minimum sigma 1", {"s_min_uncond": 1.0}, {}),
    ("FP8 weights", {"fp8_storage": "Enable"}, {}),
    ("step cache interval 3", {}, {"deepcache_interval": 3}),
    ("step cache 3 + token merging 0.5", {"token_merging_ratio": 0.5}, {"deepcache_interval": 3}),
)


def option_cases(server, args):
    rows, reference, base_cpu = [], None, None
    chosen = OPTIONS if args.options is None else [OPTIONS[0]] + [o for o in OPTIONS[1:] if o[0] in args.options]
    for name, settings, ad in chosen:
        saved = server.options(**settings)
        try:
            frames, cpu, wall, peak, counts = server.video(body(args, 16, **ad), 16)
        finally:
            if saved:
                server.options(**saved)
        if reference is None:
            reference, base_cpu = frames, cpu
        rows.append(row(name, frames, cpu, wall, peak, reference, base_cpu, counts if ad else None))
    return rows


def table(rows):
    keys = ["case", "cpu_s", "cpu_s_each", "wall_s", "speedup", "cpu_over_plain", "motion_module_cpu_s", "peak_rss_mib", "change_from_exact", "frame_to_frame",
            "neighbour_seed_change", "calls_full_cached"]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("SD_WEBUI_URL", "http://127.0.0.1:7860"))
    parser.add_argument("--pid", type=int, required=True, help="the WebUI server's process id")
    parser.add_argument("--model", required=True, help="a motion module file name the WebUI lists")
    parser.add_argument("--cases", default="cache,v2v,options", help="any of plain, cache, v2v, options")
    parser.add_argument("--controlnet-model", help="for the v2v case: a ControlNet model the WebUI lists")
    parser.add_argument("--options", type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
                        help="for the options case: only these rows (comma-separated names as printed), after "
                             "the default it compares them with")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--repeats", type=int, default=3, help="for the plain case: rounds of video and plain batch")
    args = parser.parse_args(argv)
    cases = args.cases.split(",")
    runs = {"plain": plain_cases, "cache": cache_cases, "v2v": v2v_cases, "options": option_cases}
    unknown = set(cases) - set(runs)
    if unknown:
        parser.error(f"--cases: unknown {sorted(unknown)}; allowed: {', '.join(runs)}")
    names = [name for name, _, _ in OPTIONS]
    if args.options is not None and (bad := [o for o in args.options if o not in names]):
        parser.error(f"--options: unknown {bad}; allowed: {', '.join(names)}")
    server = Server(args.url, args.pid)
    print(f"{server.webui} at {args.url} (pid {args.pid}), {args.size}x{args.size}, {args.steps} steps Euler, seed {args.seed}, "
          f"model {args.model}; peak RSS reset per request: {reset_peak(args.pid)}", flush=True)
    server.video(body(args, 16), 16)  # warm-up: model loads and first-call costs
    for case, run in runs.items():
        if case in cases:
            rows = run(server, args)
            if rows:
                print(f"\n{case}:\n" + table(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""benchmarks/interpolation.py: a quick run prints its table and Flow beats
Linear by the goal; bad options exit 2 naming the option (as in test_benchmarks.py)."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "interpolation.py"


def test_quick_run_prints_the_table_and_flow_beats_linear_by_6_db():
    out = subprocess.run([sys.executable, str(SCRIPT), "--size", "128", "--frames", "4"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "| photo | motion | method | PSNR dB | mean abs diff | ms / in-between |" in out.stdout
    result = json.loads(out.stdout.strip().splitlines()[-1])
    rows = {(r["photo"], r["motion"], r["method"]): r for r in result["rows"]}
    assert len(rows) == 3 * 2 * 2
    for (photo, motion, method), row in rows.items():
        assert row["inbetweens"] == 3
        assert f"| {photo} | {motion} | {method} | {row['psnr']:.2f} |" in out.stdout
        if method == "Flow":
            assert row["psnr"] > rows[photo, motion, "Linear"]["psnr"] + 6, (photo, motion)
    assert min(result["margin_db"].values()) > 6
    assert "misses" not in out.stdout


@pytest.mark.parametrize("args, message", [
    (["--size", "8"], "argument --size: must be between 32 and 2048, got 8"),
    (["--frames", "3"], "argument --frames: must be between 4 and 64"),
    (["--pan", "0"], "argument --pan: must be above 0 and at most 64, got 0"),
    (["--zoom", "1"], "argument --zoom: must be above 1 and at most 1.5, got 1"),
    (["--repeats", "0"], "argument --repeats: must be at least 1, got 0"),
    (["--photos", "lena"], "argument --photos: expected comma-separated names from astronaut, chelsea, coffee"),
    (["--size", "big"], "argument --size: invalid int value: 'big'"),
])
def test_bad_options_exit_2_naming_the_option(args, message):
    out = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr

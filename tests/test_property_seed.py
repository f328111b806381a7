"""The property-based tests draw the same inputs on every run (tests/conftest.py):
seed 0 by default, another through ANIMATEDIFF_TEST_SEED, and hypothesis's own
--hypothesis-seed over both."""

import os
import subprocess
import sys
import textwrap

from conftest import TEST_SEED_VARIABLE, property_seed
from hypothesis import given, settings
from hypothesis import strategies as st


def _draws():
    seen = []

    @settings(max_examples=200, deadline=None)
    @given(st.integers(), st.text(max_size=5))
    def collect(n, s):
        seen.append((n, s))

    collect()
    return seen


def test_a_property_test_draws_the_same_inputs_twice_in_one_run():
    assert _draws() == _draws()


def test_what_other_tests_import_does_not_change_the_draws(tmp_path, monkeypatch):
    first = _draws()
    module = tmp_path / "seed_probe_constants.py"
    module.write_text("VALUES = [" + ", ".join(str(7919 * i + 104729) for i in range(300)) + "]\n"
                      "WORDS = [" + ", ".join(repr(f"q{i}z") for i in range(300)) + "]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("seed_probe_constants")
    assert _draws() == first


def test_the_seed_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(TEST_SEED_VARIABLE, raising=False)
    assert property_seed() == 0
    monkeypatch.setenv(TEST_SEED_VARIABLE, " 42 ")
    assert property_seed() == 42


PROBE = textwrap.dedent("""
    import os
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=10, deadline=None)
    @given(st.integers(0, 10**9))
    def test_draw(n):
        with open(os.environ["PROBE_OUT"], "a") as f:
            f.write(f"{n}\\n")
""")


def _run_probe(tmp_path, name, seed=None, extra=(), environment=None):
    """Run a one-test file through pytest with this suite's conftest, in a fresh process; its draws."""
    test_file = tmp_path / "test_probe.py"
    test_file.write_text(PROBE)
    out = tmp_path / f"{name}.txt"
    env = {k: v for k, v in os.environ.items() if k != TEST_SEED_VARIABLE}
    env.update(PROBE_OUT=str(out), PYTHONPATH=os.path.dirname(__file__), **(environment or {}))
    if seed is not None:
        env[TEST_SEED_VARIABLE] = str(seed)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-c", os.devnull, *extra, str(test_file)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return out.read_text().split()


def test_runs_repeat_by_default_and_the_variable_or_option_changes_them(tmp_path):
    first = _run_probe(tmp_path, "a")
    assert first and _run_probe(tmp_path, "b") == first
    other = _run_probe(tmp_path, "c", seed=5)
    assert other != first and _run_probe(tmp_path, "d", seed=5) == other
    assert _run_probe(tmp_path, "e", seed=5, extra=["--hypothesis-seed=0"]) == first


def test_a_ci_machine_draws_what_any_other_machine_draws(tmp_path):
    # hypothesis loads its derandomizing "ci" profile where CI is set; the suite's own profile overrides it.
    assert _run_probe(tmp_path, "local") == _run_probe(tmp_path, "ci", environment={"CI": "true"})
    assert _run_probe(tmp_path, "ci5", seed=5, environment={"CI": "true"}) == _run_probe(tmp_path, "local5", seed=5)

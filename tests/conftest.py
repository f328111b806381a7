"""Shared test set-up.

Property-based tests (hypothesis) run with one fixed seed, so what they print
(for instance tests/test_hardening_inputs.py's "3000 generated argument sets
... N accepted") is the same on every run and every machine. The seed is
``ANIMATEDIFF_TEST_SEED`` (default 0); set it to try other inputs:

    ANIMATEDIFF_TEST_SEED=7 python3 -m pytest -q tests/test_hardening_inputs.py

hypothesis's own ``--hypothesis-seed`` wins over the variable. With a seed set,
hypothesis keeps no example database, so an earlier failure does not change the
next run's inputs either; a failure reproduces with the same seed. Nor do the
other tests of the run: hypothesis's pool of literals taken from loaded modules
is kept empty (``_fixed_constant_pool``). Nor does the machine: hypothesis
loads its "ci" profile (derandomize, which ignores the seed) wherever a CI
variable is set, so the suite loads its own profile (``_seeded_profile``). The pytest
header names the seed in use. Tests that set ``derandomize=True`` themselves
(tests/webui/test_webui_fuzz.py) keep their own fixed seed.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (ROOT, os.path.join(ROOT, "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)


import pytest  # noqa: E402

_FIGURES = []
TEST_SEED_VARIABLE = "ANIMATEDIFF_TEST_SEED"


def property_seed() -> int:
    """The seed of the property-based tests: ANIMATEDIFF_TEST_SEED, default 0."""
    raw = os.environ.get(TEST_SEED_VARIABLE, "").strip() or "0"
    try:
        return int(raw)
    except ValueError:
        raise pytest.UsageError(f"{TEST_SEED_VARIABLE} must be an integer, got {raw!r}") from None


def _fixed_constant_pool():
    """hypothesis mixes literals found in every loaded module of the project into what it draws, so its
    inputs would depend on which modules the tests run before happened to import: the counts of
    tests/test_hardening_inputs.py differed between a run of that file alone and the whole suite. Keep
    the pool to hypothesis's own constants, so one seed draws the same inputs in any run."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:  # another hypothesis version: nothing to fix there, or the test below tells
        return
    if hasattr(providers, "_get_local_constants"):
        empty = Constants()
        providers._get_local_constants = lambda: empty


def _seeded_profile():
    """Where a CI variable is set (CI, GITHUB_ACTIONS, ...) hypothesis loads its "ci" profile, whose
    derandomize draws from each test's name and ignores the seed: the counts in CI differed from every
    other machine's. One profile everywhere: the seed decides, no example database, no deadline (slow
    machines time differently, and a deadline only turns that into failures)."""
    from hypothesis import HealthCheck, settings

    settings.register_profile("animatediff", derandomize=False, database=None, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("animatediff")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # Runs before hypothesis's own pytest_configure, which turns this option
    # into its global seed (the same as passing --hypothesis-seed).
    if getattr(config.option, "hypothesis_seed", None) is None:
        config.option.hypothesis_seed = str(property_seed())
    _seeded_profile()
    _fixed_constant_pool()


def pytest_report_header(config):
    seed = getattr(config.option, "hypothesis_seed", None)
    return f"property-based tests: seed {seed} (set {TEST_SEED_VARIABLE} for another)"


@pytest.fixture(scope="module")
def unet():
    """A small real SD1.5 ldm UNet (tests/unets.py), one per test module."""
    from unets import sd15_unet

    return sd15_unet()


@pytest.fixture(scope="module")
def model():
    """A random v2 motion module sized for `unet`."""
    from motion_module.synthetic import random_model
    from unets import channels_for

    return random_model("v2", channels=channels_for("v2"))


@pytest.fixture(scope="session")
def figures():
    """Lines for the summary at the end of the run: the hardening suite's
    counts (inputs tried, faults injected, runs, memory), which docs/hardening.md
    copies."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.section("hardening figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)

"""Tests for motion_module/context (sliding context windows and their fusion).

The worked examples come from params.md section 5.  They list windows as the
reference scheduler emits them, duplicates included; ``context_windows`` drops
exact duplicates (keeping first occurrences), so each example is checked in both
forms: verbatim against the independent ``reference_context`` and de-duplicated
against ``context_windows``.
"""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st


from reference_context import uniform_windows_reference as _reference

from motion_module.context import (
    CLOSED_LOOP_MODES,
    ContextOptions,
    WindowAccumulator,
    context_windows,
    fuse_windows,
    ordered_halving,
    stride_levels,
)
from motion_module.context.fuse import flat_weights, fuse_weights
from motion_module.request.params import resolve_overlap

CLOSED_LOOP_CHOICES = tuple(CLOSED_LOOP_MODES)


def Options(length=16, stride=1, overlap=-1, closed_loop="R-P", fuse="pyramid"):
    """ContextOptions as the request model resolves them (-1 = length // 4)."""
    return ContextOptions(length=length, stride=stride, overlap=resolve_overlap(overlap, length),
                          closed_loop=closed_loop, fuse=fuse)


def uniform_windows_reference(num_frames, step, opts):
    return _reference(num_frames, step, opts.length, opts.overlap, opts.stride, opts.closed_loop)


def _ls(opts):
    return opts.length, opts.stride


def window_weights(n, fuse):
    return fuse_weights(fuse)(n) if fuse_weights(fuse) else flat_weights(n)


def span(a, b):
    """Inclusive frame range, to write windows like params.md's [a..b]."""
    return list(range(a, b + 1))


def dedupe(windows):
    out = []
    for w in windows:
        if w not in out:
            out.append(w)
    return out


def covered(windows):
    return set(itertools.chain.from_iterable(windows))


# --------------------------------------------------------------------------- ordered_halving


def test_ordered_halving_first_values():
    expected = [0, 1 / 2, 1 / 4, 3 / 4, 1 / 8, 5 / 8, 3 / 8, 7 / 8, 1 / 16]
    assert [ordered_halving(s) for s in range(9)] == expected


def test_ordered_halving_range_and_errors():
    # Plain float division would round these up to 1.0; the result must stay < 1.
    assert ordered_halving(2**64 - 1) < 1.0
    assert ordered_halving(2**54 - 1) < 1.0
    assert ordered_halving(2**53 - 1) == 1 - 2.0**-53  # still exact
    assert ordered_halving(2**63) == 2.0**-64
    with pytest.raises(ValueError, match="step"):
        ordered_halving(-1)
    with pytest.raises(ValueError, match="step"):
        ordered_halving(2**64)


# --------------------------------------------------------------------------- worked examples

EX1 = Options(length=16, overlap=4, stride=1)
EX1_EXPECTED = {
    0: [span(0, 15), span(12, 27), span(24, 31) + span(0, 7)],
    1: [span(16, 31), span(28, 31) + span(0, 11), span(8, 23)],
    2: [span(8, 23), span(20, 31) + span(0, 3), span(0, 15)],
}


@pytest.mark.parametrize("mode", ["R-P", "R+P", "A"])
@pytest.mark.parametrize("step", [0, 1, 2])
def test_example1_closed_loop_modes(step, mode):
    opts = Options(length=16, overlap=4, stride=1, closed_loop=mode)
    assert uniform_windows_reference(32, step, opts) == EX1_EXPECTED[step]
    assert context_windows(32, step, opts) == EX1_EXPECTED[step]  # no duplicates here


def test_example1_pad_values():
    # pad = round(L * h(step)) = 0, 16, 8 for steps 0, 1, 2.
    assert [round(32 * ordered_halving(s)) for s in range(3)] == [0, 16, 8]


def test_example1_mode_n_replaces_wrapping_window():
    opts = Options(length=16, overlap=4, stride=1, closed_loop="N")
    reference = [span(0, 15), span(12, 27), span(16, 31), span(0, 15)]
    assert uniform_windows_reference(32, 0, opts) == reference
    # [0..15] appears twice in the reference; the second pass is dropped.
    assert context_windows(32, 0, opts) == [span(0, 15), span(12, 27), span(16, 31)]


def test_example1_mode_n_never_wraps_contiguous_windows():
    opts = Options(length=16, overlap=4, stride=1, closed_loop="N")
    for step in range(64):
        for w in context_windows(32, step, opts):
            assert w == sorted(w), (step, w)


def test_example2_reduce_vs_aggressive():
    rp = Options(length=16, overlap=4, closed_loop="R-P")
    a = Options(length=16, overlap=4, closed_loop="A")
    assert context_windows(40, 0, rp) == [span(0, 15), span(12, 27), span(24, 39)]
    assert context_windows(40, 0, a) == [span(0, 15), span(12, 27), span(24, 39), span(36, 39) + span(0, 11)]
    assert uniform_windows_reference(40, 0, rp) == context_windows(40, 0, rp)
    assert uniform_windows_reference(40, 0, a) == context_windows(40, 0, a)


def test_example3_stride_levels():
    opts = Options(length=16, overlap=4, stride=3)
    assert stride_levels(64, *_ls(opts)) == 3
    d1 = [span(s, s + 15) for s in (0, 12, 24, 36, 48)]
    d2 = [list(range(s, s + 32, 2)) for s in (0, 28)] + [[56, 58, 60, 62] + list(range(0, 24, 2))]
    d4 = [list(range(0, 64, 4))]
    expected = d1 + d2 + d4
    assert uniform_windows_reference(64, 0, opts) == expected
    assert context_windows(64, 0, opts) == expected


def test_r_minus_p_and_r_plus_p_give_identical_windows():
    for L, step, stride in itertools.product((20, 33, 64, 100), range(8), (1, 3)):
        rp = Options(length=16, stride=stride, closed_loop="R-P")
        rpp = Options(length=16, stride=stride, closed_loop="R+P")
        assert context_windows(L, step, rp) == context_windows(L, step, rpp)


def test_stride_levels_cap_matches_float_formula():
    for L in range(17, 600):
        opts = Options(length=16, stride=50)
        assert stride_levels(L, *_ls(opts)) == min(50, math.ceil(math.log2(L / 16)) + 1)
    assert stride_levels(64, *_ls(Options(length=16, stride=2))) == 2
    assert stride_levels(10, *_ls(Options(length=16, stride=4))) == 1


# --------------------------------------------------------------------------- improvements


@pytest.mark.parametrize("num_frames", [1, 5, 15, 16])
@pytest.mark.parametrize("mode", CLOSED_LOOP_CHOICES)
def test_short_clip_single_window_of_exactly_num_frames(num_frames, mode):
    opts = Options(length=16, stride=4, overlap=8, closed_loop=mode)
    for step in range(5):
        assert context_windows(num_frames, step, opts) == [list(range(num_frames))]
    # The reference padded the window up to the context batch size.
    assert uniform_windows_reference(num_frames, 0, opts) == [list(range(16))]


def test_mode_n_flushes_postponed_first_window():
    # Realistic settings where the reference leaves frames 0 and 1 uncovered:
    # its last window wraps with most frames before the end, so it emits only
    # [L-B..L-1] and waits for a next wrapping window that never comes.
    opts = Options(length=16, overlap=4, closed_loop="N")
    reference = uniform_windows_reference(40, 8, opts)
    assert covered(reference) == set(range(2, 40))
    ours = context_windows(40, 8, opts)
    assert ours == reference + [span(0, 15)]
    assert covered(ours) == set(range(40))


def test_context_windows_is_dedupe_of_reference_except_mode_n_flush():
    for L, B, O, S, mode, step in itertools.product(
        (17, 25, 40, 64, 97), (8, 16), (0, 2, 4, 7), (1, 2, 3), CLOSED_LOOP_CHOICES, range(12)
    ):
        opts = Options(length=B, overlap=O, stride=S, closed_loop=mode)
        ours = context_windows(L, step, opts)
        ref = dedupe(uniform_windows_reference(L, step, opts))
        first = list(range(B))
        if mode == "N" and first not in ref and first in ours:
            # The flushed first window: the only difference from the reference.
            ours.remove(first)
        assert ours == ref


def _check_schedule(L, B, O, S, mode, step):
    opts = Options(length=B, overlap=O, stride=S, closed_loop=mode)
    windows = context_windows(L, step, opts)
    assert windows, "never zero windows"
    assert covered(windows) == set(range(L)), (L, B, O, S, mode, step)
    assert len({tuple(w) for w in windows}) == len(windows), "no duplicate windows"
    expected_len = min(L, B)
    assert all(len(w) == expected_len for w in windows)
    assert all(0 <= f < L for w in windows for f in w)


def test_coverage_grid():
    for L, B, S, mode, step in itertools.product(
        range(1, 70, 4), (1, 3, 8, 16), (1, 2, 4), CLOSED_LOOP_CHOICES, (0, 1, 2, 5, 8, 13)
    ):
        for O in {0, B // 4, B // 2, B - 1}:
            _check_schedule(L, B, O, S, mode, step)


def test_huge_step_keeps_coverage():
    # Found by hypothesis: with h(step) rounded to 1.0 the reference's first
    # window starts one frame late and frame 0 is never covered.
    _check_schedule(2, 1, 0, 1, "N", 2**54 - 1)
    _check_schedule(40, 16, 4, 2, "R-P", 2**64 - 1)


@settings(max_examples=200, deadline=None)
@given(
    L=st.integers(1, 300),
    B=st.integers(1, 32),
    data=st.data(),
    S=st.integers(1, 6),
    mode=st.sampled_from(CLOSED_LOOP_CHOICES),
    step=st.one_of(st.integers(0, 1000), st.integers(0, 2**64 - 1)),
)
def test_coverage_property(L, B, data, S, mode, step):
    O = data.draw(st.integers(0, B - 1), label="overlap")
    _check_schedule(L, B, O, S, mode, step)


# --------------------------------------------------------------------------- options


def test_overlap_resolves_to_a_quarter_of_the_context():
    assert Options().overlap == 4
    assert Options(length=8, overlap=3).overlap == 3
    assert Options(length=3).overlap == 0


def test_options_are_frozen():
    with pytest.raises(Exception):
        Options().length = 8


def test_num_frames_must_be_positive():
    with pytest.raises(ValueError, match="num_frames"):
        context_windows(0, 0, Options())


# --------------------------------------------------------------------------- fusion


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16])
def test_pyramid_weights_symmetric_positive_peaked(n):
    w = window_weights(n, "pyramid")
    assert w.shape == (n,)
    assert torch.all(w > 0)
    assert torch.equal(w, w.flip(0))
    assert w.max() == w[(n - 1) // 2]
    assert w[0] == 1


def test_pyramid_and_flat_values():
    assert window_weights(5, "pyramid").tolist() == [1, 2, 3, 2, 1]
    assert window_weights(4, "pyramid").tolist() == [1, 2, 2, 1]
    assert window_weights(4, "flat").tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="fuse"):
        window_weights(4, "nope")


def _constant_windows(windows, values, shape=(2, 3)):
    return [(w, torch.full((len(w), *shape), float(v))) for w, v in zip(windows, values)]


def test_accumulator_weighted_average_of_constants():
    windows = [[0, 1, 2, 3], [2, 3, 4, 5]]
    outputs = _constant_windows(windows, [1.0, 5.0])
    pw = window_weights(4, "pyramid").tolist()  # [1, 2, 2, 1]
    # frame 2: position 2 in window A (w=2), position 0 in window B (w=1)
    # frame 3: position 3 in window A (w=1), position 1 in window B (w=2)
    expected_pyramid = [1, 1, (2 * 1 + 1 * 5) / 3, (1 * 1 + 2 * 5) / 3, 5, 5]
    assert pw == [1, 2, 2, 1]
    got = fuse_windows(outputs, 6, "pyramid")
    assert got.shape == (6, 2, 3)
    assert torch.allclose(got[:, 0, 0], torch.tensor(expected_pyramid))
    assert torch.allclose(got, got[:, :1, :1].expand_as(got))

    flat = fuse_windows(outputs, 6, "flat")
    assert torch.allclose(flat[:, 0, 0], torch.tensor([1, 1, 3, 3, 5, 5.0]))


def test_accumulator_last_reproduces_overwrite():
    windows = [[0, 1, 2, 3], [2, 3, 4, 5], [5, 0]]
    outputs = [(w, torch.randn(len(w), 4)) for w in windows]
    reference = torch.zeros(6, 4)
    for w, out in outputs:
        reference[w] = out  # the reference's x_out[context] = out
    assert torch.equal(fuse_windows(outputs, 6, "last"), reference)


def test_accumulator_repeated_frame_in_window():
    # Dilated windows can list a frame twice when length * dilation > num_frames.
    acc = WindowAccumulator(3, "flat")
    acc.add([0, 1, 2, 0], torch.tensor([1.0, 2.0, 3.0, 5.0]))
    assert acc.result().tolist() == [3.0, 2.0, 3.0]
    last = WindowAccumulator(3, "last")
    last.add([0, 1, 2, 0], torch.tensor([1.0, 2.0, 3.0, 5.0]))
    assert last.result().tolist() == [5.0, 2.0, 3.0]


@pytest.mark.parametrize("fuse", ["pyramid", "flat", "last"])
def test_accumulator_frame_dim_and_dtype(fuse):
    windows = [[0, 1, 2], [1, 2, 3]]
    acc = WindowAccumulator(4, fuse, frame_dim=1)
    for i, w in enumerate(windows):
        acc.add(w, torch.full((2, len(w), 5), float(i + 1), dtype=torch.float16))
    out = acc.result()
    assert out.shape == (2, 4, 5) and out.dtype == torch.float16
    assert out[0, 0, 0] == 1 and out[0, 3, 0] == 2
    if fuse == "last":
        assert out[0, 1, 0] == 2


def test_accumulator_identity_on_full_schedule():
    # Every window carries the true per-frame value, so any fuse must return it.
    L = 50
    truth = torch.randn(L, 3)
    for mode, fuse, step in itertools.product(CLOSED_LOOP_CHOICES, ("pyramid", "flat", "last"), range(4)):
        opts = Options(length=16, stride=3, closed_loop=mode, fuse=fuse)
        acc = WindowAccumulator(L, opts.fuse)
        for w in context_windows(L, step, opts):
            acc.add(w, truth[w])
        assert torch.allclose(acc.result(), truth, atol=1e-6)


def test_accumulator_errors():
    acc = WindowAccumulator(4)
    with pytest.raises(RuntimeError, match="no window"):
        acc.result()
    acc.add([0, 1], torch.ones(2, 3))
    with pytest.raises(RuntimeError, match=r"\[2, 3\]"):
        acc.result()
    with pytest.raises(ValueError, match="shape"):
        acc.add([2, 3], torch.ones(3, 3))
    with pytest.raises(ValueError, match="outside"):
        acc.add([3, 4], torch.ones(2, 3))


# --------------------------------------------------------------------------- FreeNoise


def test_freenoise_keeps_the_first_context_and_reuses_it_shuffled():
    from motion_module.context.freenoise import reschedule

    noise = torch.arange(40, dtype=torch.float32).view(40, 1).expand(40, 3).contiguous()
    out = reschedule(noise, context=16, overlap=4, seed=7)
    assert torch.equal(out[:16], noise[:16])
    # each window step (12 frames) is a permutation of the frames one context before it
    assert sorted(out[16:28, 0].tolist()) == list(range(0, 12))
    assert sorted(out[28:40, 0].tolist()) == sorted(out[12:24, 0].tolist())
    assert not torch.equal(out[16:28], noise[0:12])  # shuffled
    assert torch.equal(out, reschedule(noise, 16, 4, seed=7))  # seeded
    assert not torch.equal(out, reschedule(noise, 16, 4, seed=8))
    assert torch.equal(reschedule(noise[:16], 16, 4, seed=7), noise[:16])  # one window: unchanged

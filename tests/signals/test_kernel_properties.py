"""Hypothesis properties of the crossover rule."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.signals.kernel import detect

FAST, SLOW = 3, 8

closes_strategy = st.lists(
    st.integers(min_value=100, max_value=10_000), min_size=SLOW, max_size=120
).map(lambda cents: np.array([cents], dtype=np.float64) / 100)

deterministic = settings(max_examples=150, derandomize=True, deadline=None)


def _crosses(closes: np.ndarray) -> list[tuple[int, int]]:
    cross = detect(closes, FAST, SLOW).cross[0]
    return [(int(t), int(cross[t])) for t in np.flatnonzero(cross)]


@deterministic
@given(closes_strategy)
def test_crosses_alternate(closes: np.ndarray) -> None:
    kinds = [kind for _, kind in _crosses(closes)]
    assert all(a == -b for a, b in itertools.pairwise(kinds))


@deterministic
@given(closes_strategy, st.sampled_from([0.5, 2.0, 4.0, 0.125]))
def test_scaling_by_a_power_of_two_changes_no_cross(closes: np.ndarray, factor: float) -> None:
    # Powers of two scale exactly in binary, so every sum scales exactly too.
    assert _crosses(closes * factor) == _crosses(closes)


@deterministic
@given(closes_strategy, st.integers(min_value=1, max_value=64))
def test_adding_a_constant_changes_no_cross(closes: np.ndarray, shift: int) -> None:
    # Integers in cents stay exact; the tie band scales with the slow average, and
    # integer closes never produce a |d| inside the band other than exact ties.
    cents = np.round(closes * 100)
    assert _crosses(cents + shift * 100) == _crosses(cents)


@deterministic
@given(closes_strategy)
def test_reflection_swaps_golden_and_death(closes: np.ndarray) -> None:
    # The mean is linear: K - c gives fast' - slow' = -(fast - slow), in exact integers.
    cents = np.round(closes * 100)
    reflected = 2_000_000 - cents
    assert _crosses(reflected) == [(t, -kind) for t, kind in _crosses(cents)]

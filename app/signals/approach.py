"""The ``cross_approaching`` rule over kernel signals: one session at a time for many
symbols (the daily path), or over whole histories at once (the full path, the scan)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.signals import kernel

APPROACH_GAP_PCT = 1.0

BoolArray = npt.NDArray[np.bool_]


def approach_step(
    armed: BoolArray,
    done: BoolArray,
    was_death: BoolArray,
    death: BoolArray,
    gap: npt.NDArray[np.float64],
) -> tuple[BoolArray, BoolArray, BoolArray]:
    """The ``cross_approaching`` rule, one session for many symbols at once: in a death
    regime the gap *narrowed* to within 1% after having been wider in that regime, once
    per regime (the sessions right after a death cross, while the averages are still
    close, do not count).

    State per symbol: ``armed`` (a wide gap seen in this death regime, no approach yet)
    and ``done`` (an approach recorded in it). ``was_death``/``death``: the regime was /
    is death; ``gap``: this session's gap in percent. Returns the next (armed, done) and
    whether the symbol approached on this session.
    """
    wide = gap < -APPROACH_GAP_PCT
    starting = death & ~was_death
    approached = death & was_death & armed & ~wide
    next_armed = death & np.where(starting, wide, ~approached & (armed | (~done & wide)))
    next_done = death & ~starting & (done | approached)
    return next_armed, next_done, approached


@dataclass(frozen=True)
class Approaches:
    """:func:`approach_step` over whole histories: ``at`` marks each (row, column) with a
    ``cross_approaching``; ``armed``/``done``: each row's state after its newest session."""

    at: BoolArray
    armed: BoolArray
    done: BoolArray


def approaches(signals: kernel.Signals) -> Approaches:
    """:func:`approach_step` run over every row's whole history, in closed form (whole
    matrices, no loop over sessions; ``tests/signals/test_scan.py`` holds it equal to
    the step run session by session): within each death-regime run, the first session
    whose gap is no longer wide right after one that was (after the run's first wide
    session the gap stays wide until then, so that is the run's first wide-to-near step).
    """
    death = signals.regime == -1
    wide = signals.gap_pct() < -APPROACH_GAP_PCT
    step = np.zeros(death.shape, dtype=bool)
    np.logical_and(death[:, 1:], death[:, :-1], out=step[:, 1:])
    step[:, 1:] &= wide[:, :-1]
    step[:, 1:] &= ~wide[:, 1:]
    run_start = death.copy()
    run_start[:, 1:] &= ~death[:, :-1]
    at = np.zeros(death.shape, dtype=bool)
    steps = np.flatnonzero(step)
    if steps.size:
        # Each step's run: the last run start at or before it (same row: a step's run
        # begins at the latest in its own row's column 0).
        run = np.searchsorted(np.flatnonzero(run_start), steps, side="right") - 1
        first = np.ones(steps.size, dtype=bool)
        first[1:] = run[1:] != run[:-1]
        at.flat[steps[first]] = True
    # The state after the newest session: that of the run it ends in, if any.
    width = death.shape[1]
    in_death = death[:, -1] if width else np.zeros(death.shape[0], dtype=bool)
    begun = _last_column(run_start)
    done = in_death & (_last_column(at) >= begun)
    armed = in_death & ~done & (_last_column(wide & death) >= begun)
    return Approaches(at, armed, done)


def _last_column(mask: BoolArray) -> npt.NDArray[np.int64]:
    """Column of each row's last True, -1 for a row without one."""
    width = mask.shape[1]
    if width == 0:
        return np.full(mask.shape[0], -1, dtype=np.int64)
    found = mask.any(axis=1)
    column = (width - 1 - np.argmax(mask[:, ::-1], axis=1)).astype(np.int64)
    result: npt.NDArray[np.int64] = np.where(found, column, -1)
    return result

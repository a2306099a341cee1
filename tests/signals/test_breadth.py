"""Breadth against a plain pandas computation, per symbol on its own sessions and then
lined up by date, on a synthetic universe: short histories (< 50, < 200, < 252
sessions), a symbol with a gap in its sessions, one that stopped early."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.market.repository import ClosePanel
from app.signals import breadth, kernel
from app.signals.analysis import Rule, analyse

UNION = pd.bdate_range("2020-01-01", periods=320)


def universe() -> dict[str, pd.Series]:
    rng = np.random.default_rng(7)

    def walk(n: int) -> np.ndarray:
        return 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))

    rising = pd.Series(np.arange(1.0, 321.0), index=UNION)
    gapped_days = UNION.delete([100, 101, 102])
    return {
        "RISE": rising,  # hand-checkable: always above its averages, new highs
        "WALK": pd.Series(walk(320), index=UNION),
        "LONG": pd.Series(walk(260), index=UNION[-260:]),  # >= 252, < 320
        "MID": pd.Series(walk(150), index=UNION[-150:]),  # < 200
        "SHORT": pd.Series(walk(40), index=UNION[-40:]),  # < 50
        "GAP": pd.Series(walk(317), index=gapped_days),  # misses three sessions
        "EARLY": pd.Series(walk(300), index=UNION[:300]),  # stopped 20 sessions ago
        "NONE": pd.Series([], dtype=float),
    }


def panel_of(series: dict[str, pd.Series]) -> ClosePanel:
    symbols = sorted(series)
    width = max(len(s) for s in series.values())
    closes = np.full((len(symbols), width), np.nan)
    sessions = np.full((len(symbols), width), np.datetime64("NaT"), dtype="datetime64[D]")
    for row, symbol in enumerate(symbols):
        s = series[symbol]
        if len(s):
            closes[row, width - len(s) :] = s.to_numpy()
            sessions[row, width - len(s) :] = s.index.to_numpy().astype("datetime64[D]")
    return ClosePanel(symbols, closes, sessions)


def oracle(series: dict[str, pd.Series], fast: int, slow: int) -> pd.DataFrame:
    """Breadth by hand: each symbol on its own sessions, then summed by date."""
    frames = []
    for s in series.values():
        if not len(s):
            continue
        f, sl = s.rolling(fast).mean(), s.rolling(slow).mean()
        ratio = f / sl
        sign = np.where(ratio > 1 + 1e-9, 1, np.where(ratio < 1 - 1e-9, -1, 0))
        regime = pd.Series(np.where(sign != 0, sign, np.nan), index=s.index).ffill().fillna(0)
        regime[sl.isna()] = 0
        previous = regime.shift(1).fillna(0)
        high = s.rolling(252).max()
        low = s.rolling(252).min()
        frames.append(
            pd.DataFrame(
                {
                    "members": 1,
                    "fast_known": f.notna(),
                    "above_fast": s > f,
                    "slow_known": sl.notna(),
                    "above_slow": s > sl,
                    "regimes": regime != 0,
                    "golden": regime == 1,
                    "golden_crosses": (regime == 1) & (previous == -1),
                    "death_crosses": (regime == -1) & (previous == 1),
                    "new_highs": high.notna() & (s == high),
                    "new_lows": low.notna() & (s == low),
                }
            ).astype(int)
        )
    total = pd.concat(frames).groupby(level=0).sum().sort_index()

    def share(part: str, whole: str) -> pd.Series:
        return (total[part] * 100.0 / total[whole]).where(total[whole] > 0)

    return pd.DataFrame(
        {
            "members": total["members"],
            "above_fast_pct": share("above_fast", "fast_known"),
            "above_slow_pct": share("above_slow", "slow_known"),
            "golden_regime_pct": share("golden", "regimes"),
            "golden_crosses": total["golden_crosses"],
            "death_crosses": total["death_crosses"],
            "new_highs": total["new_highs"],
            "new_lows": total["new_lows"],
        }
    )


@pytest.fixture(params=[256, 2, 3], ids=["default-blocks", "blocks-of-2", "blocks-of-3"])
def blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every path of the block loop: one block, and blocks of two or three rows."""
    monkeypatch.setattr(breadth, "ROW_BLOCK", request.param)


def computed(series: dict[str, pd.Series], rule: Rule, chosen: list[str]) -> pd.DataFrame:
    """Breadth as the service computes it: the default rule over every panel row, any
    other detected on the chosen rows alone."""
    panel = panel_of(series)
    rows = np.array(sorted(panel.symbols.index(s) for s in chosen), dtype=np.int64)
    highs, lows = breadth.highs_and_lows(panel.closes)
    picked = rule != Rule(50, 200)
    s = analyse(panel, rule).signals if not picked else None
    signals = kernel.detect(panel.closes[rows], rule.fast, rule.slow, rule.kind) if picked else s
    assert signals is not None
    cells = breadth.Cells.of(panel.closes, (highs, lows), signals, rule_picked=picked)
    result = breadth.breadth(panel, breadth.calendar(panel), rows, cells)
    frame = pd.DataFrame(
        {name: getattr(result, name) for name in result.__dataclass_fields__ if name != "sessions"},
        index=pd.DatetimeIndex(result.sessions),
    )
    return frame


@pytest.mark.parametrize("rule", [Rule(50, 200), Rule(5, 20), Rule(50, 200, "ema")])
@pytest.mark.parametrize("chosen", [None, ["GAP", "MID", "SHORT"], ["EARLY", "LONG"]])
@pytest.mark.usefixtures("blocks")
def test_breadth_equals_the_pandas_oracle(rule: Rule, chosen: list[str] | None) -> None:
    series = universe()
    names = chosen or sorted(series)
    got = computed(series, rule, names)
    if rule.kind == "ema":
        # pandas' ewm is not seeded with an SMA: compare what does not depend on it.
        expected = oracle({n: series[n] for n in names}, rule.fast, rule.slow)
        columns = ["members", "new_highs", "new_lows"]
    else:
        expected = oracle({n: series[n] for n in names}, rule.fast, rule.slow)
        columns = list(expected.columns)
    assert list(got.index) == list(expected.index)
    for column in columns:
        np.testing.assert_allclose(
            got[column].to_numpy(dtype=float),
            expected[column].to_numpy(dtype=float),
            rtol=1e-12,
            err_msg=column,
        )


@pytest.mark.usefixtures("blocks")
def test_hand_checked_values() -> None:
    series = universe()
    got = computed(series, Rule(50, 200), sorted(series))
    first, last = UNION[0], UNION[-1]
    # The first session: RISE, WALK, GAP, EARLY have a close; nobody has 50 sessions.
    assert got.loc[first, "members"] == 4
    assert np.isnan(got.loc[first, "above_fast_pct"])
    assert np.isnan(got.loc[first, "golden_regime_pct"])
    # LONG starts at session 60; GAP has no close on its three missing sessions.
    assert got.loc[UNION[99], "members"] == 5
    assert got.loc[UNION[100], "members"] == 4
    # The last session: all but EARLY and NONE (6 members).
    assert got.loc[last, "members"] == 6
    # RISE's 252nd session is its first new high of 252 sessions.
    assert got.loc[UNION[251], "new_highs"] >= 1
    assert got.loc[UNION[250], "new_highs"] == 0
    only_rise = computed(series, Rule(50, 200), ["RISE"])
    assert (only_rise["above_fast_pct"].dropna() == 100.0).all()
    assert only_rise["above_fast_pct"].first_valid_index() == UNION[49]
    assert only_rise["golden_regime_pct"].first_valid_index() == UNION[199]
    assert only_rise["new_highs"].sum() == 320 - 251
    assert only_rise["golden_crosses"].sum() == 0


def test_rolling_extreme_equals_a_plain_window() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(4, 50))
    values[1, :7] = np.nan
    values[2] = np.round(values[2])  # ties
    for window in (1, 2, 5, 7, 8, 33, 50):
        for highest in (True, False):
            got = breadth.rolling_extreme(values, window, highest=highest)
            rolling = pd.DataFrame(values.T).rolling(window, min_periods=1)
            expected = (rolling.max() if highest else rolling.min()).to_numpy().T
            expected[:, : window - 1] = np.nan
            np.testing.assert_array_equal(got, expected)


def test_highs_and_lows_equal_pandas_on_a_ragged_universe() -> None:
    """Integer closes (many ties: a close equal to the window's extreme counts), rows
    of every length around 252, and left padding."""
    rng = np.random.default_rng(11)
    width = 600
    lengths = [0, 1, 251, 252, 253, 400, 599, 600, 600]
    closes = np.full((len(lengths), width), np.nan)
    for row, length in enumerate(lengths):
        closes[row, width - length :] = rng.integers(1, 12, length)
    closes[-1, -300:] = 7.0  # flat: once the window is all 7s, both a high and a low
    highs, lows = breadth.highs_and_lows(closes)
    for row, length in enumerate(lengths):
        own = pd.Series(closes[row, width - length :])
        high = own.rolling(252).max()
        low = own.rolling(252).min()
        expected_highs = np.zeros(width, dtype=bool)
        expected_lows = np.zeros(width, dtype=bool)
        expected_highs[width - length :] = high.notna() & (own == high)
        expected_lows[width - length :] = low.notna() & (own == low)
        np.testing.assert_array_equal(highs[row], expected_highs, err_msg=f"row {row}")
        np.testing.assert_array_equal(lows[row], expected_lows, err_msg=f"row {row}")
    flat = slice(width - 300 + 251, width)
    assert highs[-1, flat].all() and lows[-1, flat].all()

"""Brief benchmark: what the daily brief's Markdown adds to a daily poll, and the time
of ``GET /v1/brief`` (issue 15 item 2).

A folder of CSV files holds the three bundled indices (their whole history: 24,777,
14,003 and 9,811 sessions) and ``--symbols`` synthetic symbols of ``--sessions`` each
(the walks of ``benchmarks/universe.py``). Two stores are backfilled alike by
``crosswatch poll``; in each, the poller a running scheduler builds polls twice (the
second poll: one new session for every synthetic symbol, on carried state, brief
included: ``universe.py``'s ``daily_poll_s``), once as shipped and once with the brief's
``text`` left out. Then ``GET /v1/brief`` is timed in-process on the first store: the
newest session (median of 5) and a past session (its first request builds the cut
panels' analyses; then the median of 5 served from those cuts).

Usage (from the repository root)::

    .venv/bin/python benchmarks/brief.py                     # 5,000 symbols x 300
    .venv/bin/python benchmarks/brief.py --symbols 500       # a quick iteration

The last line is ``brief: symbols=N daily_poll_s=N daily_poll_without_text_s=N
text_s=N brief_newest_ms=N brief_past_first_ms=N brief_past_again_ms=N``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/universe.py
import universe as synthetic

from app.db.engine import Database
from app.market.service import bundled_bars
from app.settings import DEFAULT_SYMBOLS, load_settings
from app.signals import brief_markdown


def write_indices(folder: Path) -> None:
    for symbol in DEFAULT_SYMBOLS:
        rows = [f"{bar.session.isoformat()},{bar.close!r}" for bar in bundled_bars(symbol)]
        (folder / f"{symbol.lstrip('^')}.csv").write_text("date,close\n" + "\n".join(rows) + "\n")


def timed_text() -> tuple[list[float], Callable[[], None]]:
    """Record each call of :func:`brief_markdown.indices_markdown`; the second value undoes it."""
    seconds: list[float] = []
    real = brief_markdown.indices_markdown

    def measured(*args: Any, **kwargs: Any) -> str:
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    brief_markdown.indices_markdown = measured  # type: ignore[assignment]
    return seconds, lambda: setattr(brief_markdown, "indices_markdown", real)


def without_text() -> Callable[[], None]:
    real = brief_markdown.indices_markdown
    brief_markdown.indices_markdown = lambda *_args, **_kwargs: None  # type: ignore[assignment]
    return lambda: setattr(brief_markdown, "indices_markdown", real)


def brief_ms(url: str, past: str) -> tuple[float, float, float]:
    from fastapi.testclient import TestClient

    from app.api.app import create_app

    settings = load_settings(database_url=url, seed=False, _env_file=None)
    with TestClient(create_app(settings, clock=lambda: datetime.now(UTC))) as client:
        client.get("/v1/signals")  # the book warm, as serve has it before /readyz

        def once(params: dict[str, str]) -> float:
            started = time.perf_counter()
            answer = client.get("/v1/brief", params=params)
            if answer.status_code != 200:
                raise RuntimeError(f"GET /v1/brief {params}: {answer.status_code} {answer.text}")
            return (time.perf_counter() - started) * 1000

        newest = statistics.median(once({}) for _ in range(5))
        first = once({"session": past})
        return newest, first, statistics.median(once({"session": past}) for _ in range(5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    names, days, closes, volumes = synthetic.universe(args.symbols, args.sessions, args.seed)
    history = slice(0, args.sessions)
    tracked = [*DEFAULT_SYMBOLS, *names]
    print(f"brief: 3 indices + {len(names)} symbols x {args.sessions} sessions", flush=True)
    polls: dict[str, float] = {}
    text_seconds: list[float] = []
    with tempfile.TemporaryDirectory() as work:
        for variant in ("with text", "without text"):
            folder = Path(work) / variant.replace(" ", "_")
            folder.mkdir()
            write_indices(folder)
            synthetic.write_csvs(folder, names, days, closes, volumes, history)
            url = f"sqlite:///{folder}/store.db"
            backfill_s, _ = synthetic.backfill(synthetic._env(url, folder, tracked))
            print(f"  backfill ({variant})  {backfill_s:8.2f} s", flush=True)
            if variant == "with text":
                text_seconds, undo = timed_text()
            else:
                undo = without_text()
            try:
                polls[variant] = synthetic.daily(url, folder, names, days, closes, volumes)
            finally:
                undo()
            print(f"  daily poll ({variant})  {polls[variant]:8.2f} s", flush=True)
            if variant == "with text":
                past = days[args.sessions - 20].isoformat()
                newest, first, again = brief_ms(url, past)
                print(
                    f"  GET /v1/brief newest {newest:.0f} ms, {past} first {first:.0f} ms, "
                    f"again {again:.0f} ms",
                    flush=True,
                )
            Database(url).dispose()
    text = text_seconds[-1] if text_seconds else float("nan")
    print(
        f"brief: symbols={len(names)} daily_poll_s={polls['with text']:.2f} "
        f"daily_poll_without_text_s={polls['without text']:.2f} text_s={text:.2f} "
        f"brief_newest_ms={newest:.0f} brief_past_first_ms={first:.0f} "
        f"brief_past_again_ms={again:.0f}"
    )


if __name__ == "__main__":
    main()

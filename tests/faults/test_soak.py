"""The soak, reduced to run in under a minute: one year of ^GSPC replayed at full speed
(``--interval 0``) to 20 subscriptions through real replay, worker and receiver
processes (``benchmarks/soak.py`` runs ten years and 100 subscriptions). The history
before that year is cut to 2023 on: the replay's cost per session grows with the stored
history, and this test is about delivery, not detection speed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from benchmarks.soak import run_soak
from tests.conftest import PG_URL

#: RSS growth allowed from the warm-up sample to the last one.
FLAT_MB = 25.0


@pytest.mark.skipif(PG_URL is not None, reason="the soak's store is SQLite; run once, not twice")
def test_one_year_replay_delivers_every_event_once_with_flat_memory(tmp_path: Path) -> None:
    result = run_soak(years=1, subscriptions=20, history_from=date(2023, 1, 1), workdir=tmp_path)
    print("\n" + "\n".join(result.lines()))

    assert result.sessions >= 240 and result.live_events >= 1 and result.expected >= 1
    assert result.missing == 0 and result.unexpected == 0
    assert result.duplicates == 0, "sent twice although every first attempt was acknowledged"
    assert result.bad_signatures == 0
    assert result.attempts_per_delivery == {1: result.expected}
    assert result.delivery_status == {"succeeded": result.expected}
    for name, memory in (("replay", result.replay_rss), ("worker", result.worker_rss)):
        assert memory.last - memory.warm < FLAT_MB, f"{name} RSS grew: {memory.text()}"

"""A serving process warms its signal book before it says it is ready."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.api.app import create_app
from app.db.engine import Database
from app.market import repository
from app.settings import Settings, load_settings
from app.signals.book import SignalBook, Snapshot
from app.signals.router import list_key
from tests.conftest import FIXED_NOW, data_file, fixed_clock
from tests.support.stores import seed


class HeldBook(SignalBook):
    """A real signal book whose snapshots wait until the test lets them go on."""

    def __init__(self) -> None:
        super().__init__()
        self.go_on = threading.Event()
        self.entered = threading.Event()

    def snapshot(self, session: Session) -> Snapshot:
        self.entered.set()
        assert self.go_on.wait(30), "the test never let the snapshot go on"
        return super().snapshot(session)


def _bodies(book: SignalBook, db: Database) -> dict[Hashable, bytes]:
    """The bodies rendered into the book's current snapshot."""
    with db.transaction(write=False) as session:
        return dict(book.snapshot(session).bodies)


def test_readyz_is_warming_until_the_first_snapshot_and_body_exist(
    settings: Settings, db: Database
) -> None:
    seed(db, ["^RUT", "^GSPC"], now=FIXED_NOW)
    book = HeldBook()
    app = create_app(settings, db=db, clock=fixed_clock, warm=True, signal_book=book)
    with TestClient(app) as client:
        assert book.entered.wait(30)
        waiting = client.get("/readyz")
        assert waiting.status_code == 503
        assert waiting.json()["detail"].startswith("warming")
        assert client.get("/healthz").status_code == 200, "alive while warming"
        book.go_on.set()
        assert app.state.signals_warm.wait(30)
        assert client.get("/readyz").status_code == 200
        warm_body = _bodies(book, db).get(list_key(book, fixed_clock()))
        assert warm_body is not None, "the /v1/signals body was rendered before any request"
        served = client.get("/v1/signals")
        assert served.status_code == 200
        assert served.content == warm_body
        book.invalidate()  # the route renders the body again: the same bytes
        assert client.get("/v1/signals").content == warm_body
        assert [s["symbol"] for s in served.json()["signals"]] == ["^GSPC", "^RUT"]


def test_without_warm_the_app_is_ready_at_once_and_renders_on_demand(
    settings: Settings, db: Database
) -> None:
    book = SignalBook()
    app = create_app(settings, db=db, clock=fixed_clock, signal_book=book)
    with TestClient(app) as client:
        assert app.state.signals_warm.is_set()
        assert client.get("/readyz").status_code == 200
        assert _bodies(book, db) == {}, "nothing rendered before a request"


def test_a_poll_that_adds_data_warms_the_book_again_after_its_commit(
    database_url: str, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler's catch-up poll stores ^RUT from a csv folder; once it has
    committed, the book is warmed again in the background, so the first request after
    the poll is answered from memory: no snapshot read, no render."""
    folder = tmp_path / "csv"
    folder.mkdir()
    lines = data_file("rut_daily.csv").read_text().splitlines()
    (folder / "^RUT.csv").write_text("\n".join([lines[0], *lines[-400:]]) + "\n")
    settings = load_settings(
        database_url=database_url,
        seed=False,
        providers="csv",
        csv_dir=str(folder),
        symbols="^RUT",
        watch_interval_minutes=0,
        _env_file=None,
    )
    reads: list[repository.StoreSnapshot] = []
    read_snapshot = repository.read_snapshot

    def counted(session: Session) -> repository.StoreSnapshot:
        reads.append(read_snapshot(session))
        return reads[-1]

    monkeypatch.setattr(repository, "read_snapshot", counted)
    book = SignalBook()
    app = create_app(
        settings, db=db, clock=fixed_clock, scheduler=True, warm=True, signal_book=book
    )
    with TestClient(app) as client:
        assert app.state.signals_rewarmed.wait(60), "no warm-up after the poll"
        assert app.state.signals_warm.wait(60)  # the start's warm-up is over too
        assert reads[-1].panel.symbols == ["^RUT"], "warmed with the poll's data"
        read_before = len(reads)
        warm_body = _bodies(book, db).get(list_key(book, fixed_clock()))
        assert warm_body is not None
        served = client.get("/v1/signals")
        assert served.content == warm_body
        assert [s["symbol"] for s in served.json()["signals"]] == ["^RUT"]
        assert len(reads) == read_before, "the request after the poll read nothing"

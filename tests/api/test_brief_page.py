"""The status page shows the newest daily brief, its Markdown rendered as HTML (raw HTML
in the text is shown as text)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi.testclient import TestClient

from app.api.app import create_app
from app.db.engine import Database
from app.settings import Settings
from app.signals import daily_brief
from app.signals.models import Event, event_id
from tests.status.dom import parse
from tests.support.stores import seed

NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)


def test_the_status_page_shows_the_newest_brief(db: Database, settings: Settings) -> None:
    seed(db, ["^RUT", "^GSPC", "^IXIC"], now=NOW)
    with TestClient(create_app(settings, db=db, clock=lambda: NOW)) as client:
        assert 'id="brief"' not in client.get("/status").text  # no brief yet
        with db.transaction() as session:
            signals = daily_brief.brief_signals(session, None, now=NOW)
            stored = daily_brief.record_daily_brief(
                session,
                signals,
                text=daily_brief.daily_brief_text(session, signals, now=NOW),
                now=NOW,
                live=False,
            )
            assert stored is not None
            text = stored.data["text"]
            # An older brief, with markup in its text: not the newest, never shown.
            session.add(
                Event(
                    id=event_id("*", "brief", "daily_brief", date(2026, 8, 20)),
                    type="daily_brief",
                    symbol="*",
                    session=date(2026, 8, 20),
                    rule="brief",
                    live=False,
                    data={"session": "2026-08-20", "symbols": [], "text": "# old"},
                    created_at=NOW,
                )
            )
        page = client.get("/status").text
        served = client.get(
            "/v1/brief", params={"session": "2026-08-21"}, headers={"Accept": "text/markdown"}
        ).text
    assert served.startswith(text.removesuffix("\n") + "\n\n## All tracked symbols\n")
    article = parse(page).by_id("brief")
    # Headings two levels down, under the page's h1 and the section's h2.
    assert [h.text() for h in article.find_all("h3")] == ["Crosswatch brief, 2026-08-21"]
    assert [h.text() for h in article.find_all("h4")] == ["Indices"]
    assert [h.text() for h in article.find_all("h5")] == ["^RUT", "^GSPC", "^IXIC"]
    assert not article.find_all("h1") and not article.find_all("h2")
    (table,) = article.find_all("table")
    assert [row.find_all("td")[0].text() for row in table.find_all("tr")[1:]] == [
        "^RUT",
        "^GSPC",
        "^IXIC",
    ]
    assert "# old" not in page


def test_markup_in_a_brief_is_shown_as_text(db: Database, settings: Settings) -> None:
    with db.transaction() as session:
        session.add(
            Event(
                id=event_id("*", "brief", "daily_brief", date(2026, 8, 21)),
                type="daily_brief",
                symbol="*",
                session=date(2026, 8, 21),
                rule="brief",
                live=False,
                data={"session": "2026-08-21", "symbols": [], "text": "# B\n\n<script>x</script>"},
                created_at=NOW,
            )
        )
    with TestClient(create_app(settings, db=db, clock=lambda: NOW)) as client:
        page = client.get("/status").text
    assert "<h3>B</h3>" in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page

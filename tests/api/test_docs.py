"""``/docs`` renders in a real browser that can reach nothing but loopback.

``crosswatch serve`` runs as a real process; headless Chromium resolves every host except
127.0.0.1 to nothing, so a page that needs a CDN stays blank. Swagger UI must draw the
operations from the assets the server itself serves.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.faults.support import crosswatch_env, serving
from tests.status.dom import parse
from tests.status.test_browser import _browse, _chromium

OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def test_docs_renders_with_no_network_but_loopback(database_url: str, tmp_path: Path) -> None:
    binary = _chromium()
    env = crosswatch_env(database_url)
    with serving(env, "--no-scheduler", "--no-worker") as (_, base):
        page = httpx.get(f"{base}/docs", timeout=10)
        assert page.status_code == 200
        assert "cdn." not in page.text and "https://" not in page.text
        html = _browse(
            binary,
            tmp_path / "profile",
            OFFLINE,
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{base}/docs",
        )
    # Swagger UI drew the contract: the title and every operation's path.
    assert "Crosswatch" in parse(html).text()
    drawn = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', html))
    assert {"/readyz", "/v1/signals", "/v1/signals/{symbol}", "/v1/webhooks"} <= drawn

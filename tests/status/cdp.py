"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (stdlib only).

Headless Chromium will not open a window narrower than 500 px, so a phone's 390 px
viewport is set the way DevTools' device mode sets it: ``Emulation.setDeviceMetricsOverride``.
Chromium reads commands from fd 3 and writes answers and events to fd 4, one JSON
message per NUL-terminated record.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

DEADLINE_SECONDS = 60.0


class Page:
    """One tab with a fixed viewport; every call waits for its answer (or fails)."""

    def __init__(self, process: subprocess.Popen[bytes], commands: int, answers: int) -> None:
        self._process = process
        self._commands, self._answers = commands, answers
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        self._events: list[dict[str, Any]] = []

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0, "Chromium did not answer in time"
            ready, _, _ = select.select([self._answers], [], [], left)
            if ready:
                chunk = os.read(self._answers, 1 << 20)
                assert chunk, "Chromium closed its DevTools pipe"
                self._buffer += chunk
        record, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(record)
        return message

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self._session is not None:
            command["sessionId"] = self._session
        os.write(self._commands, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            message = self._message(deadline)
            if message.get("id") == self._next_id:
                assert "error" not in message, message["error"]
                result: dict[str, Any] = message["result"]
                return result
            self._events.append(message)

    def wait_for(self, event: str) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            for index, message in enumerate(self._events):
                if message.get("method") == event:
                    del self._events[: index + 1]
                    return
            self._events.append(self._message(deadline))

    def open(self, url: str, width: int, height: int) -> None:
        """Load ``url`` in a new tab whose viewport is ``width``×``height`` CSS px (a phone's
        when narrow: touch, mobile viewport rules), and wait for its load event."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        self._events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        answer = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in answer, answer["exceptionDetails"]
        return answer["result"]["value"]

    def screenshot(self, path: Path) -> None:
        """The whole page, not only the viewport, as PNG."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.call(
            "Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True
        )
        path.write_bytes(base64.b64decode(shot["data"]))


@contextmanager
def chromium(binary: str, profile: Path) -> Iterator[Page]:
    """A headless Chromium driven over its DevTools pipe; closed on the way out."""
    to_browser_read, to_browser_write = os.pipe()
    from_browser_read, from_browser_write = os.pipe()

    def pipes_on_3_and_4() -> None:  # in the child, before exec
        high_in = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)  # clear of 3 and 4
        high_out = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
        os.dup2(high_in, 3, inheritable=True)
        os.dup2(high_out, 4, inheritable=True)

    process = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=False,
        preexec_fn=pipes_on_3_and_4,
    )
    os.close(to_browser_read)
    os.close(from_browser_write)
    try:
        yield Page(process, to_browser_write, from_browser_read)
    finally:
        with suppress(OSError):
            os.write(
                to_browser_write, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0"
            )
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(to_browser_write)
            os.close(from_browser_read)

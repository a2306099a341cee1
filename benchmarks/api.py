"""API throughput: ``GET /v1/signals`` and ``GET /v1/signals/%5ERUT`` against a bare endpoint.

In one run, on loopback:

- ``crosswatch serve --no-scheduler --no-worker`` (one process, one uvicorn worker) on a
  fresh SQLite store in a temporary folder, seeded with the bundled history;
- a bare FastAPI app in a separate process, served by uvicorn with the same settings,
  whose one endpoint returns a constant JSON body of the same size as ``/v1/signals``
  (and a second one the size of ``/v1/signals/%5ERUT``);
- the load comes from ``wrk`` (a second process): ``--connections`` connections for
  ``--seconds`` seconds per endpoint, after a short warm-up.

It prints requests/s and p50/p99 latency of each, and the ratios; the last line is
``signals/bare=R p99_ms=N`` (R: ``/v1/signals`` throughput over the bare endpoint's;
N: the p99 of ``/v1/signals``). Requires ``wrk`` (``apt-get install -y wrk``).

Usage (from the repository root)::

    .venv/bin/python benchmarks/api.py [--connections 64] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def bare_server(port: int, sizes: list[int]) -> None:
    """The baseline: FastAPI returning constant JSON bodies of the given sizes."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import Response

    def body(size: int) -> bytes:
        prefix, suffix = b'{"padding":"', b'"}'
        return prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix

    bodies = [body(size) for size in sizes]
    app = FastAPI()

    @app.get("/bare/{index}")
    async def bare(index: int) -> Response:
        return Response(bodies[index], media_type="application/json")

    # The same server settings as ``crosswatch serve`` (which runs the asyncio loop).
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", log_config=None, loop="asyncio"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


@dataclass
class Load:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(name: str, url: str, connections: int, seconds: int) -> Load:
    threads = str(min(2, connections))
    subprocess.run(
        ["wrk", "-t", threads, "-c", str(connections), "-d", "2s", url],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        ["wrk", "-t", threads, "-c", str(connections), "-d", f"{seconds}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    if "Latency Distribution" not in out:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        print(f"  ({name}: socket errors {socket_errors.group(1)})")
    return Load(name, rps, p50, p99, int(errors.group(1)) if errors else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--bare-server", nargs=2, metavar=("PORT", "SIZES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(int(args.bare_server[0]), [int(s) for s in args.bare_server[1].split(",")])
        return
    if shutil.which("wrk") is None:
        sys.exit("error: wrk is not installed (apt-get install -y wrk)")

    with tempfile.TemporaryDirectory() as folder:
        port = _free_port()
        env = {
            **os.environ,
            "CROSSWATCH_DATABASE_URL": f"sqlite:///{folder}/crosswatch.db",
            "CROSSWATCH_SEED": "true",
            "CROSSWATCH_LOG_LEVEL": "WARNING",
        }
        app_server = subprocess.Popen(
            [
                *(sys.executable, "-m", "app", "serve", "--no-scheduler", "--no-worker"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bare_server_process: subprocess.Popen[bytes] | None = None
        try:
            base = f"http://127.0.0.1:{port}"
            _wait(f"{base}/healthz", app_server)
            signals = httpx.get(f"{base}/v1/signals", timeout=60)
            one = httpx.get(f"{base}/v1/signals/%5ERUT", timeout=60)
            signals.raise_for_status()
            one.raise_for_status()
            bare_port = _free_port()
            sizes = f"{len(signals.content)},{len(one.content)}"
            bare_server_process = subprocess.Popen(
                [sys.executable, __file__, "--bare-server", str(bare_port), sizes],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            bare = f"http://127.0.0.1:{bare_port}"
            _wait(f"{bare}/bare/0", bare_server_process)
            print(
                f"bodies: /v1/signals {len(signals.content)} B, /v1/signals/%5ERUT "
                f"{len(one.content)} B; {args.connections} connections, {args.seconds} s each"
            )
            results = [
                wrk("bare (size of /v1/signals)", f"{bare}/bare/0", args.connections, args.seconds),
                wrk("GET /v1/signals", f"{base}/v1/signals", args.connections, args.seconds),
                wrk("bare (size of one signal)", f"{bare}/bare/1", args.connections, args.seconds),
                wrk(
                    "GET /v1/signals/%5ERUT",
                    f"{base}/v1/signals/%5ERUT",
                    args.connections,
                    args.seconds,
                ),
            ]
        finally:
            for process in (app_server, bare_server_process):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=30)
    for r in results:
        print(
            f"  {r.name:30s} {r.rps:9.0f} req/s   p50 {r.p50_ms:7.2f} ms   p99 {r.p99_ms:7.2f} ms"
            + (f"   {r.errors} errors" if r.errors else "")
        )
    bare_all, signals_all, bare_one, signals_one = results
    print(f"  /v1/signals/bare = {signals_all.rps / bare_all.rps:.2f}")
    print(f"  /v1/signals/%5ERUT/bare = {signals_one.rps / bare_one.rps:.2f}")
    print(f"signals/bare={signals_all.rps / bare_all.rps:.2f} p99_ms={signals_all.p99_ms:.1f}")


if __name__ == "__main__":
    main()

"""A user's fresh clone stands alone: its real-data tests pass with nothing beside it.

The repository is cloned into an empty temporary folder (no ``../shared`` or anything else
next to it) and the tests that read real series run there, from the clone's own files.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# Paths that only exist on a developer's machine, or folders beside the clone.
OUTSIDE = re.compile(r"/work/|\.\./shared|/root/|/home/\w+/")


def _git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout


def test_no_tracked_file_points_outside_the_repository() -> None:
    tracked = _git("ls-files").split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".gz", ".png", ".ico"} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line) and name != "tests/test_fresh_clone.py":
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []


def test_a_clone_with_nothing_beside_it_passes_its_real_data_tests(tmp_path: Path) -> None:
    clone = tmp_path / "repo"
    _git("clone", "-q", str(ROOT), str(clone))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("CROSSWATCH_TEST_DATABASE_URL", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            "tests/signals/test_kernel_oracle.py",
            "tests/jobs/test_replay_and_events.py",
        ],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "skipped" not in summary and "passed" in summary, summary
    # The clone's tests imported the clone's own code, not this checkout's.
    assert str(ROOT) not in done.stdout

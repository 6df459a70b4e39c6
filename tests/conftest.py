"""Shared fixtures: one executed demo health report per session, and Chromium.

Running the health notebook costs a kernel start plus the analysis (seconds),
so the report tests, the notebook tests and the HTML tests share one run in a
session temp dir and copy it when they need to change things.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

FIRST_DAY = "2026-11-23"
SECOND_DAY = "2026-11-30"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass
class HealthRun:
    """The demo health report executed once into `reports_dir/<day>/`."""

    reports_dir: Path
    day: str
    result: object  # aiops.reports.runner.ReportResult
    seconds: float

    @property
    def day_dir(self) -> Path:
        return self.reports_dir / self.day

    @property
    def html(self) -> Path:
        return self.day_dir / "health.html"

    @property
    def notebook(self) -> Path:
        return self.day_dir / "health.ipynb"

    @property
    def summary(self) -> Path:
        return self.day_dir / "health.summary.json"


@pytest.fixture(scope="session")
def health_run(tmp_path_factory: pytest.TempPathFactory) -> HealthRun:
    from aiops.reports.runner import run_report

    out = tmp_path_factory.mktemp("reports")
    t0 = time.perf_counter()
    result = run_report("health", source="demo", out_dir=out, date=FIRST_DAY)
    return HealthRun(out, FIRST_DAY, result, time.perf_counter() - t0)


@pytest.fixture
def health_copy(health_run: HealthRun, tmp_path: Path) -> HealthRun:
    """A private copy of the session's reports dir, for tests that add runs to it."""
    dst = tmp_path / "reports"
    shutil.copytree(health_run.reports_dir, dst)
    return HealthRun(dst, health_run.day, health_run.result, health_run.seconds)


def _find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """Headless Chromium with the network blocked: every request that is not a
    file goes to a dead proxy and every host name fails to resolve."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.binary = binary
        self.profile = profile

    def _args(self) -> list[str]:
        return [
            self.binary, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions",
            f"--user-data-dir={self.profile}",
            "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=10000", "--window-size=1280,2000",
        ]

    def dump_dom(self, page: Path, timeout: float = 90) -> str:
        """The DOM after scripts ran (virtual time budget), as HTML."""
        proc = subprocess.run([*self._args(), "--dump-dom", page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0 or "<html" not in proc.stdout:
            raise AssertionError(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return proc.stdout

    def screenshot(self, page: Path, out: Path, height: int = 2000,
                   timeout: float = 90) -> Path:
        args = [a if not a.startswith("--window-size") else f"--window-size=1280,{height}"
                for a in self._args()]
        subprocess.run([*args, f"--screenshot={out}", page.resolve().as_uri()],
                       capture_output=True, timeout=timeout, check=False)
        return out


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Browser:
    """Chromium, or a skip (a failure when CI=true: CI must have it)."""
    binary = _find_chromium()
    if binary is None:
        reason = ("chromium not found (Debian: apt-get install -y chromium; or set "
                  "CHROMIUM=/path/to/binary)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return Browser(binary, tmp_path_factory.mktemp("chromium-profile"))


@pytest.fixture(scope="session", autouse=True)
def _no_real_audit_trail(tmp_path_factory: pytest.TempPathFactory):
    """Tests never write into the repository's history/prompts: a PHR store opened
    without a root resolves to a directory outside any git repository, so it fails
    loudly instead (tests pass their own store)."""
    old = os.environ.get("AIOPS_HISTORY")
    os.environ["AIOPS_HISTORY"] = str(tmp_path_factory.mktemp("no-git") / "history" / "prompts")
    yield
    if old is None:
        os.environ.pop("AIOPS_HISTORY", None)
    else:
        os.environ["AIOPS_HISTORY"] = old

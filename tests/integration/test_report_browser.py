"""The HTML report renders in a real browser (headless Chromium) without a console message: no
script error, no blocked fetch (the page's Content-Security-Policy turns any fetch into a console
error), and the figures are in the rendered DOM.

Needs Debian's `chromium` package (`apt-get install chromium`); skipped, with that reason, without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aiperf_hpc.reporting.page import CONTENT_SECURITY_POLICY
from aiperf_hpc.reporting.report import write_report
from tests.unit.reporting_fixtures import write_faster_run, write_sweep_dir

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

# Every console message of the page, whatever its level: "INFO:CONSOLE(12)]" or "INFO:CONSOLE:12]".
CONSOLE_LINE = re.compile(r":CONSOLE[:(]\d+\)?\]")
BROWSER_TIMEOUT_S = 60


def render(page: Path, profile_dir: Path, *, action: str) -> tuple[str, list[str]]:
    """Open `page` in headless Chromium with `action` (--dump-dom, --screenshot=PATH): (stdout, console lines)."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile_dir}",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,2400",
        action,
        page.resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, [line for line in result.stderr.splitlines() if CONSOLE_LINE.search(line)]


@needs_chromium
def test_the_console_check_sees_script_errors_and_blocked_fetches(tmp_path: Path) -> None:
    """The check below could fail: a planted console error and a fetch the policy blocks both show."""
    page = tmp_path / "planted.html"
    page.write_text(
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        f'</head><body><img src="{(tmp_path / "elsewhere.png").as_uri()}"></body></html>'
    )
    _, console = render(page, tmp_path / "profile", action="--dump-dom")
    assert any("Content Security Policy" in line for line in console), console

    page.write_text('<!DOCTYPE html><html><body><script>console.error("planted")</script></body></html>')
    _, console = render(page, tmp_path / "profile", action="--dump-dom")
    assert any('"planted"' in line for line in console), console


@needs_chromium
def test_the_run_report_renders_without_console_messages(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_faster_run(run_dir)
    page = write_report(run_dir)
    plots = len(list((run_dir / "plots").glob("*.png")))

    dom, console = render(page, tmp_path / "profile", action="--dump-dom")

    assert console == []
    assert "<h1>aiperf-hpc report: run</h1>" in dom
    assert dom.count('src="data:image/png;base64,') == plots == 6

    screenshot = tmp_path / "report.png"
    _, console = render(page, tmp_path / "profile", action=f"--screenshot={screenshot}")
    assert console == []
    assert screenshot.read_bytes().startswith(b"\x89PNG")


@needs_chromium
def test_the_sweep_report_renders_without_console_messages(tmp_path: Path) -> None:
    write_sweep_dir(tmp_path / "sweep")
    page = write_report(tmp_path / "sweep")

    dom, console = render(page, tmp_path / "profile", action="--dump-dom")

    assert console == []
    assert dom.count('src="data:image/png;base64,') == 1
    assert 'href="concurrency4/report.html"' in dom

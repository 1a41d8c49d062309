"""The HTML report in a real browser: headless Chromium (Debian's `chromium`; `make test` installs it
where it can) renders it to a screenshot and its DOM, and the page logs nothing to the console.

The report is one file with inline CSS and no script; values from the account are escaped, so a
resource named `<script>...` shows as text and runs nothing (a console message would say so)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from provisioner.controls import rule_metadata
from provisioner.findings import Finding, Report
from provisioner.report_formats import html_text

CHROMIUM = os.environ.get("HARDEN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="no chromium here (make test installs Debian's chromium "
                                "where apt-get runs as root; HARDEN_CHROMIUM names another)")
HOSTILE = 'vpc-0abc<script>console.error("injected")</script><img src=x onerror=alert(1)>'


def _report() -> Report:
    return Report("123456789012", ["us-east-1", "eu-west-1"], [
        Finding("flow_logs.all_vpcs", "us-east-1", HOSTILE, "fail", "VPC has no flow log", severity="medium"),
        Finding("flow_logs.all_vpcs", "eu-west-1", "vpc-2", "pass", "ok", severity="medium"),
        Finding("eip.unassociated", "us-east-1", "eipalloc-1", "suppressed", "idle", severity="low",
                suppression={"reason": "NAT spare", "expires": "2999-12-31"}),
        Finding("eip.allocations", "eu-west-1", "arn:aws:iam::123456789012:user/mallory", "fail",
                "allocated 3 addresses from 203.0.113.9", severity="critical"),
        Finding("cloudtrail.multi_region", "us-east-1", "us-east-1", "error", "access denied", severity="high"),
    ])


def _browse(page: Path, tmp_path: Path) -> tuple[str, Path, list[str]]:
    """(DOM after rendering, screenshot, console lines) from one headless Chromium run."""
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900", f"--screenshot={shot}",
         "--dump-dom", "--enable-logging=stderr", "--v=0", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Chromium logs every console message (errors, uncaught exceptions, failed loads) as :CONSOLE.
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, shot, console


def _png_stats(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the pixel data): a blank page has very few."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_html_report_renders_without_console_messages(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(html_text(_report(), rule_metadata()), encoding="utf-8")
    dom, shot, console = _browse(page, tmp_path)

    assert console == []
    width, height, distinct = _png_stats(shot)
    assert (width, height) == (1280, 900) and distinct > 50  # drawn, not blank
    # What a reader needs is in the rendered page: summary, matrix, failures with their fix.
    for section in ('id="summary"', 'id="matrix"', 'id="failing"', 'id="suppressed"'):
        assert section in dom
    assert "allocated 3 addresses from 203.0.113.9" in dom and "harden respond --principal" in dom
    assert "NAT spare" in dom
    # The hostile resource name is text, not markup.
    assert "&lt;script&gt;console.error" in dom and "<script>" not in dom
    # Self-contained: nothing is loaded from anywhere.
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:|//)', page.read_text())


def test_the_console_check_can_fail(tmp_path):
    """The same run on a page that logs and throws: the check above would catch it."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body>x<script>console.error("boom"); nope();</script></body></html>')
    _, _, console = _browse(page, tmp_path)
    assert any('"boom"' in line for line in console)
    assert any("Uncaught ReferenceError" in line for line in console)

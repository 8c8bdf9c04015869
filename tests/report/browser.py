"""Headless Chromium for the report tests: load a page, measure its charts, shoot, print.

Debian's ``chromium`` (``.ci/run`` installs it). Started as the machine's notes say a closed
network needs: no sandbox (root in CI), no GPU, no background networking, a fresh profile.
Console messages come back on stderr (``--enable-logging=stderr``); the page's charts are
measured by a small script added to a copy of the page, which writes what it found into the
DOM that ``--dump-dom`` prints.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1280,2400",
]  # fmt: skip
PROBE = """<script>
window.addEventListener('error', e => console.error('page error: ' + e.message));
window.addEventListener('load', () => {
  const found = [...document.querySelectorAll('figure svg')].map(s => {
    const b = s.getBoundingClientRect(); return [Math.round(b.width), Math.round(b.height)];
  });
  document.body.setAttribute('data-charts', JSON.stringify(found));
});
</script>"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Loaded:
    charts: list[tuple[int, int]]
    console_errors: list[str]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    exe = chromium()
    assert exe is not None, "no Chromium"
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
            timeout=120, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def load(page: Path) -> Loaded:
    """Load ``page`` (a copy with the probe) and report its charts' sizes and console errors."""
    probed = page.with_name(page.stem + ".probe.html")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                      encoding="utf-8")  # fmt: skip
    out = _run("--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom",
               probed.as_uri())  # fmt: skip
    match = re.search(r'data-charts="([^"]*)"', out.stdout)
    assert match, f"the page did not load:\n{out.stderr[-2000:]}"
    charts = [tuple(x) for x in json.loads(match.group(1).replace("&quot;", '"'))]
    console = [ln for ln in out.stderr.splitlines() if ":CONSOLE" in ln]
    return Loaded(charts, console)  # type: ignore[arg-type]


def screenshot(page: Path, dest: Path) -> Path:
    out = _run(f"--screenshot={dest}", page.as_uri())
    assert dest.exists(), out.stderr[-2000:]
    return dest


def print_pdf(page: Path, dest: Path) -> Path:
    out = _run(f"--print-to-pdf={dest}", "--no-pdf-header-footer", page.as_uri())
    assert dest.exists(), out.stderr[-2000:]
    return dest

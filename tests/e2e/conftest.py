"""End-to-end on the lab: plans made from the catalog, run over WinRM, checked against the truth.

Each test builds a lab workspace (hosts, a day of mail, backups through dr's own backup
path), breaks something with ``dr lab break``, plans with ``dr plan``, serves the lab with
``dr lab serve`` in its own process and runs the plan with ``dr run start`` — every command
the real entry point, in a subprocess — then proves the restored database equal to the
lab's ground truth.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "lab passphrase for the end-to-end tests"


@dataclass
class LabWorkspace:
    root: Path
    env: dict[str, str]

    @property
    def ws(self) -> Path:
        return self.root / "ws"

    def dr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "dr", *args], capture_output=True, text=True,
            env=self.env, check=False, stdin=subprocess.DEVNULL, timeout=600,
        )  # fmt: skip
        if check and out.returncode != 0:
            raise AssertionError(
                f"dr {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
            )
        return out

    def lab(self):  # type: ignore[no-untyped-def]
        from dr.lab.estate import Lab

        return Lab.open(self.ws / "lab")

    def plan(self, *args: str) -> dict:  # type: ignore[type-arg]
        path = self.root / "plan.json"
        self.dr("plan", *args, "-o", str(path))
        return json.loads(path.read_text(encoding="utf-8"))

    def run_plan(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """Serve the lab in its own process while ``dr run start`` runs the saved plan."""
        with self.serving() as env:
            return subprocess.run(
                [sys.executable, "-m", "dr", "run", "start", str(self.root / "plan.json"),
                 "--non-interactive", *extra],
                capture_output=True, text=True, env=env, check=False, stdin=subprocess.DEVNULL,
                timeout=900,
            )  # fmt: skip

    @contextlib.contextmanager
    def serving(self) -> Iterator[dict[str, str]]:
        """``dr lab serve`` in its own process; yields the environment that signs in to it."""
        lab = self.lab()
        env = {**self.env, "DR_WINRM_USER": "lab\\operator", "DR_WINRM_PASSWORD": lab.password}
        server = subprocess.Popen(
            [sys.executable, "-m", "dr", "lab", "serve"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            for line in server.stdout:
                if line.startswith("serving"):
                    break
            else:
                raise AssertionError("dr lab serve did not start")
            yield env
        finally:
            server.terminate()
            server.wait(timeout=30)


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
    env.update({
        "DR_WORKSPACE": str(root / "ws"), "DR_KEY_DIR": str(root / "keys"),
        "DR_PASSPHRASE": PASSPHRASE, "DR_KDF_PROFILE": "fast", "COLUMNS": "200",
        "DR_OPERATOR": "e2e",
    })  # fmt: skip
    return env


@pytest.fixture(scope="session")
def built_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One day of the example estate, built once; each test works on a copy."""
    root = tmp_path_factory.mktemp("lab-template")
    env = _env(root)
    out = subprocess.run(
        [sys.executable, "-m", "dr", "lab", "up", "--days", "1", "--inventory",
         str(ROOT / "examples" / "estate.yaml")],
        capture_output=True, text=True, env=env, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return root


@pytest.fixture
def lab_ws(built_lab: Path, tmp_path: Path) -> Iterator[LabWorkspace]:
    root = tmp_path / "lab"
    shutil.copytree(built_lab, root, symlinks=True)
    _rebase(built_lab, root)
    yield LabWorkspace(root, _env(root))


def _rebase(old: Path, new: Path) -> None:
    """The copy's config names its own folders, not the template's."""
    for path in (new / "ws" / "config.yaml", new / "ws" / "lab" / "lab.json"):
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace(str(old), str(new)), encoding="utf-8")


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%MZ")


def dr_with(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`dr ARGS` in a subprocess with ``env`` (e.g. the one `LabWorkspace.serving` yields)."""
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=env,
        check=False, stdin=subprocess.DEVNULL, timeout=900,
    )  # fmt: skip


def newest_run(env: dict[str, str]) -> str:
    """The id of the newest run in the workspace's journal."""
    runs = json.loads(dr_with(env, "run", "status", "--json").stdout)
    return str(max(runs, key=lambda r: r["created"])["id"])


def run_steps(env: dict[str, str], run: str) -> list[dict[str, Any]]:
    """Every step of ``run`` as `dr run status RUN --json` shows it."""
    return list(json.loads(dr_with(env, "run", "status", run, "--json").stdout)["steps"])


def steps_in(env: dict[str, str], run: str, state: str) -> list[str]:
    """The ids of the steps of ``run`` in ``state`` (e.g. ``waiting``)."""
    return [s["id"] for s in run_steps(env, run) if s["state"] == state]


def step_state(env: dict[str, str], run: str, step: str) -> str:
    """One step's state, ``""`` when the run has no such step."""
    return next((s["state"] for s in run_steps(env, run) if s["id"] == step), "")


def at_the_console(
    lab_ws: LabWorkspace, env: dict[str, str], text: str, prefixes: tuple[str, ...],
    host: str = "DC2016",
) -> list[str]:  # fmt: skip
    """Type at a DC's console (signed in as its DSRM administrator) every command of a
    rendered instruction ``text`` that starts with one of ``prefixes``; the lines typed."""
    import re

    lines = [c for c in re.findall(r"`([^`]+)`", text) if c.startswith(prefixes)]
    assert lines, text
    if not lab_ws.lab().dc(host).load().console:
        password = dr_with(env, "lab", "operator", "open-envelope", "--host", host)
        signed = dr_with({**env, "DR_LAB_DSRM_PASSWORD": password.stdout.strip()}, "lab",
                         "operator", "dsrm-sign-in", "--host", host)  # fmt: skip
        assert signed.returncode == 0, signed.stdout + signed.stderr
    for line in lines:
        said = dr_with(env, "lab", "exec", host, "--cmd", line)
        assert said.returncode == 0, f"{line}\n{said.stdout}\n{said.stderr}"
    return lines

"""A failed attempt is told at once, with its reason; what no retry can fix is not retried.

Real parts: commands run through the local transport (/bin/sh) and, for Windows hosts,
over WinRM to a loopback endpoint running the lab's PowerShell and cmd.exe.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_plan

from dr.lab.ps import NativeResult, handler
from dr.lab.winrs import WinRSServer
from engine.errors import TransportConfigError
from engine.executor import build_specs
from engine.failures import Failure
from engine.journal import Journal
from engine.runbook import Library
from engine.runner import Reporter, Runner, RunOptions, create_run
from engine.transports.base import Transport
from engine.transports.credentials import Credential
from engine.transports.local import LocalTransport
from engine.transports.winrm import WinRMSettings, WinRMTransport

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
from ps_tinyhost import TinyHost

# action (the shell), on_failure: each test's command goes into a kind of its own
KINDS = {"sh": ("check", "pause"), "ps": ("powershell", "pause"), "cmdline": ("cmd", "abort")}
USER, PASSWORD = "lab\\operator", "pw-for-the-loopback"


class Told(Reporter):
    """Keeps what a responder would have been told."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []

    def attempt_failed(self, failure: Failure) -> None:
        self.failures.append(failure)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path / "ws" / "journal.sqlite")
    yield j
    j.close()


def run_one(
    journal: Journal,
    tmp_path: Path,
    kind: str,
    script: str,
    factory: Callable[[str], Transport],
    host: str = "orchestrator",
) -> tuple[str, Told, list[tuple[str, int]], dict[str, Any]]:
    """Run a one-step plan; (run state, what was told, the step's (state, attempt) records,
    its last record)."""
    lib = tmp_path / "lib"
    lib.mkdir(exist_ok=True)
    (lib / "t.yaml").write_text(library(kind, script), encoding="utf-8")
    plan = make_plan([{"id": "s", "kind": kind, "host": host}])
    opts = RunOptions(non_interactive=True, poll_seconds=0.05)
    info = create_run(journal, plan, tmp_path / "plan.json", "alice", opts)
    specs = build_specs(plan, Library.load(extra_dirs=[lib]))
    told = Told()
    state = Runner(journal, info, specs, factory, reporter=told).run()
    steps = journal.records(info.id, kinds=["step"])
    history = [(r.body["state"], r.body["attempt"]) for r in steps if r.body["state"] != "ready"]
    return state, told, history, steps[-1].body


def library(kind: str, script: str) -> str:
    """A step library with one kind running ``script``: two retries, no backoff."""
    import yaml

    action, on_failure = KINDS[kind]
    variant = {
        "action": action,
        "command": script,
        "retries": 2,
        "backoff_seconds": 0,
        "on_failure": on_failure,
        **({"shell": "posix"} if action == "check" else {}),
    }
    return yaml.safe_dump({"kinds": {kind: {"title": kind, "variants": [variant]}}})


def local(host: str) -> Transport:
    return LocalTransport()


def test_a_transient_failure_is_told_at_each_attempt_and_retried(
    journal: Journal, tmp_path: Path
) -> None:
    script = "echo working; echo 'connection reset by peer password=hunter2' >&2; exit 1"
    state, told, history, _last = run_one(journal, tmp_path, "sh", script, local)
    assert state == "waiting"
    assert history == [
        ("running", 1), ("failed", 1), ("running", 2), ("failed", 2), ("running", 3),
        ("failed", 3), ("paused", 3),
    ]  # fmt: skip
    assert [(f.attempt, f.attempts, f.retry_in) for f in told.failures] == [
        (1, 3, 0.0), (2, 3, 0.0), (3, 3, None)
    ]  # fmt: skip
    assert told.failures[0].summary == "exit code 1"
    assert told.failures[0].lines == ("connection reset by peer password=[redacted]",)
    assert all(f.verdict is None for f in told.failures)


def test_a_refused_configuration_pauses_at_the_first_attempt(
    journal: Journal, tmp_path: Path
) -> None:
    script = (
        "echo 'error E2300 T:\\DRTemp\\DB01 is a folder on a Windows host; this machine does "
        "not know where it is mounted' >&2; exit 2"
    )
    _state, told, history, last = run_one(journal, tmp_path, "sh", script, local)
    assert history == [("running", 1), ("failed", 1), ("paused", 1)]
    (failure,) = told.failures
    assert failure.retry_in is None and failure.verdict is not None
    assert failure.verdict.rule.name == "dr refused its input"
    assert "not retried" in last["message"] and "E2300" in last["message"]


def test_a_missing_local_program_is_not_retried(journal: Journal, tmp_path: Path) -> None:
    _, told, history, _ = run_one(journal, tmp_path, "sh", "no-such-tool-anywhere", local)
    assert history == [("running", 1), ("failed", 1), ("paused", 1)]
    assert told.failures[0].summary == "exit code 127"


def test_a_host_without_a_transport_is_not_retried(journal: Journal, tmp_path: Path) -> None:
    def unmapped(host: str) -> Transport:
        raise TransportConfigError(f"no transport for host {host!r}", hint="map it in hosts:")

    _, told, history, last = run_one(journal, tmp_path, "sh", "true", unmapped, host="EX9")
    assert history == [("running", 1), ("failed", 1), ("paused", 1)]
    assert told.failures[0].verdict is not None
    assert told.failures[0].lines == ("map it in hosts:",)
    assert "no transport for host 'EX9'" in last["message"]


@pytest.fixture
def lab_host(tmp_path: Path) -> Iterator[tuple[WinRSServer, TinyHost]]:
    host = TinyHost(tmp_path / "host")
    with WinRSServer(handler(host), USER, PASSWORD) as server:
        yield server, host


def winrm_to(port: int) -> Callable[[str], Transport]:
    def factory(host: str) -> Transport:
        settings = WinRMSettings(
            host="127.0.0.1", port=port, scheme="http", auth="basic", allow_plaintext=True,
            operation_timeout=2, read_timeout=10,
        )  # fmt: skip
        return WinRMTransport(settings, Credential(USER, PASSWORD))

    return factory


def test_a_parameter_powershell_refuses_is_not_retried(
    journal: Journal, tmp_path: Path, lab_host: tuple[WinRSServer, TinyHost]
) -> None:
    server, _ = lab_host
    script = "Get-ChildItem -Path C:\\ -Bogus 1"
    _, told, history, _last = run_one(journal, tmp_path, "ps", script, winrm_to(server.port), "H")
    assert history == [("running", 1), ("failed", 1), ("paused", 1)]
    (failure,) = told.failures
    assert failure.verdict is not None and failure.verdict.rule.name == "parameter refused"
    assert any("matches parameter name 'Bogus'" in line for line in failure.lines)


def test_robocopy_serious_error_stops_at_once(
    journal: Journal, tmp_path: Path, lab_host: tuple[WinRSServer, TinyHost]
) -> None:
    """The step library's wrapper passes robocopy's 16 through; a step that aborts on
    failure fails at its first attempt and the run with it."""
    server, host = lab_host
    host.natives["robocopy"] = lambda argv, h, stdin: NativeResult("", "Access is denied.\r\n", 16)
    script = (
        "robocopy C:\\a C:\\b /E & if errorlevel 16 (exit /b 16) else if errorlevel 8 "
        "(exit /b 1) else (exit /b 0)"
    )
    state, told, history, _ = run_one(journal, tmp_path, "cmdline", script, winrm_to(server.port))
    assert state == "failed"
    assert history == [("running", 1), ("failed", 1)]
    assert told.failures[0].verdict is not None
    assert told.failures[0].verdict.rule.name == "robocopy serious error"


def test_an_unreachable_host_keeps_its_retries(journal: Journal, tmp_path: Path) -> None:
    from dr.lab.build import free_ports

    (port,) = free_ports(1)  # nothing listens: connection refused
    _, told, history, _ = run_one(journal, tmp_path, "ps", "Get-Date", winrm_to(port), "H")
    assert [a for s, a in history if s == "failed"] == [1, 2, 3]
    assert [f.verdict for f in told.failures] == [None, None, None]
    assert told.failures[0].summary.startswith("E8640")


def test_a_command_is_not_let_start_once_the_run_is_stopping(
    journal: Journal, tmp_path: Path
) -> None:
    """The local transport holds a command at its gate until the start is journalled; if the
    run is stopping by then (an abort, Ctrl-C), the gate stays shut and nothing runs."""
    import threading

    from engine.executor import Executor, TransportPool

    marker = tmp_path / "ran"
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "t.yaml").write_text(library("sh", f"touch {marker}"), encoding="utf-8")
    plan = make_plan([{"id": "s", "kind": "sh", "host": "orchestrator"}])
    info = create_run(journal, plan, tmp_path / "plan.json", "alice", RunOptions())
    (spec,) = build_specs(plan, Library.load(extra_dirs=[lib])).values()
    stopping = threading.Event()
    stopping.set()
    executor = Executor(journal, info.id, TransportPool(local), abort=stopping)
    outcome = executor.execute(spec)
    assert outcome.state == "failed" and "not let start" in outcome.message
    assert not marker.exists()
    assert [r.body["attempt"] for r in journal.records(info.id, kinds=["started"])] == [1]

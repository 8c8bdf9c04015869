"""What a transport started, reported before it can act, and stopped later from anywhere.

This is what makes a step exactly-once across a kill -9 of the engine: the engine journals
the handle inside ``on_start``, and a resume (another process) stops that command before it
re-checks the step.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from dr.lab.winrs import WinRSServer
from engine.errors import HostUnreachable, TransportError
from engine.transports.base import Command, Stoppable
from engine.transports.local import LocalTransport, group_members

from .conftest import MakeTransport

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="posix process groups")


def _in_thread(transport: Any, command: Command, timeout: float) -> tuple[threading.Event, dict]:
    """Run ``command`` on a thread; the event is set once the handle is complete."""
    reported = threading.Event()
    box: dict[str, Any] = {"handle": {}}

    def hook(handle: Any) -> None:
        box["handle"] = {**box["handle"], **handle}
        if handle.get("transport") == "local" or handle.get("command_id"):
            reported.set()

    def work() -> None:
        try:
            box["result"] = transport.run(command, timeout, on_start=hook)
        except TransportError as exc:
            box["error"] = exc

    box["thread"] = threading.Thread(target=work, daemon=True)
    box["thread"].start()
    return reported, box


def test_local_and_winrm_say_they_can_be_stopped() -> None:
    assert isinstance(LocalTransport(), Stoppable)


@posix_only
def test_a_command_does_nothing_until_its_start_is_reported(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    def refuse(handle: Any) -> None:
        assert marker.exists() is False  # the command is held at its gate
        raise OSError("the journal is full")

    with pytest.raises(OSError, match="journal is full"):
        LocalTransport().run(Command(f"touch '{marker}'", shell="posix"), 10, on_start=refuse)
    assert not marker.exists()


@posix_only
def test_the_handle_names_the_process_by_pid_group_and_start_time() -> None:
    seen: list[Any] = []
    result = LocalTransport().run(Command("echo $$", shell="posix"), 10, on_start=seen.append)
    (handle,) = seen
    assert int(result.stdout) == handle["pid"] == handle["pgid"]
    assert handle["start_ticks"] > 0 and handle["boot_id"]


@posix_only
def test_gated_commands_keep_their_stdin_and_exit_code() -> None:
    command = Command("cat; exit 3", shell="posix", stdin=b"line one\nline two\x00")
    result = LocalTransport().run(command, 10, on_start=lambda handle: None)
    assert (result.stdout, result.exit_code) == (b"line one\nline two\x00", 3)


@posix_only
def test_stop_ends_the_whole_process_group_from_another_transport(tmp_path: Path) -> None:
    pidfile = tmp_path / "child"
    script = f"sleep 60 & echo $! > '{pidfile}'; wait"
    reported, box = _in_thread(LocalTransport(), Command(script, shell="posix"), 60)
    assert reported.wait(10)
    handle = box["handle"]
    while not pidfile.exists() or not pidfile.read_text().strip():
        reported.wait(0.01)  # polling for the file the command writes
    grandchild = int(pidfile.read_text())
    said = LocalTransport().stop(handle, grace=2.0)
    assert said.startswith("stopped process group")
    box["thread"].join(10)
    assert box["result"].exit_code != 0
    assert not group_members(handle["pgid"], handle["start_ticks"])
    assert not Path(f"/proc/{grandchild}").exists() or "Z" in _state(grandchild)
    assert LocalTransport().stop(handle) == "was not running"


@posix_only
def test_a_reused_pid_is_not_taken_for_the_command() -> None:
    me = os.getpid()
    from engine.transports.local import boot_id, start_ticks

    impostor = {
        "transport": "local", "pid": me, "pgid": os.getpgid(me),
        "start_ticks": start_ticks(me) + 1, "boot_id": boot_id(),
    }  # fmt: skip
    assert LocalTransport().stop(impostor) == "was not running"
    other_boot = {**impostor, "start_ticks": start_ticks(me), "boot_id": "another boot"}
    assert "restarted" in LocalTransport().stop(other_boot)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_winrm_reports_the_shell_then_the_command(
    make_winrm: MakeTransport, winrs: WinRSServer
) -> None:
    seen: list[Any] = []
    make_winrm().run(Command("Write-Output 'x'"), 10, on_start=seen.append)
    shell, command = seen
    assert shell["shell_id"] in winrs.shells and "command_id" not in shell
    assert command["command_id"] in winrs.commands
    assert command["endpoint"] == winrs.url


def test_winrm_stop_signals_terminate_and_deletes_the_shell(
    make_winrm: MakeTransport, winrs: WinRSServer
) -> None:
    reported, box = _in_thread(make_winrm(), Command("Start-Sleep -Seconds 60"), 60)
    assert reported.wait(10)
    handle = box["handle"]
    said = make_winrm().stop(handle)
    # the running side may close its own shell the moment the command ends, before stop()
    # gets to it (a race under load): either way the shell must be gone afterwards
    assert said in (
        f"terminate signal sent, shell {handle['shell_id']} deleted",
        "terminate signal sent",
    )
    record = winrs.commands[handle["command_id"]]
    assert record.terminated and "terminate" in record.signals
    assert handle["shell_id"] not in winrs.open_shells()
    box["thread"].join(10)
    assert make_winrm().stop(handle).startswith("was not running")


def test_winrm_stop_on_an_unreachable_host_raises(
    make_winrm: MakeTransport, winrs: WinRSServer
) -> None:
    transport = make_winrm()
    winrs.kill()
    handle = {"transport": "winrm", "shell_id": "S", "command_id": "C"}
    with pytest.raises(HostUnreachable):
        transport.stop(handle)

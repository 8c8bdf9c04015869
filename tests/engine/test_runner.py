"""The runner: journal-first execution, retries, timeouts, pauses, acks, approvals, resume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_plan

from engine.errors import RunStateError
from engine.executor import StepSpec, build_specs
from engine.journal import Entry, Journal
from engine.runbook import Library
from engine.runner import Decision, Runner, RunOptions, abort, ack, create_run, stop_orphans
from engine.transports.base import Command
from engine.transports.dryrun import DryRunTransport, Recorder, Rule, Scripted, rules
from engine.transports.local import LocalTransport


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path / "ws" / "journal.sqlite")
    yield j
    j.close()


class Harness:
    def __init__(self, journal: Journal, library_dir: Path, tmp_path: Path) -> None:
        self.journal, self.library = journal, Library.load(extra_dirs=[library_dir])
        self.tmp_path = tmp_path
        self.recorder = Recorder()

    def start(self, steps: list[dict[str, Any]], by: str = "alice", **options: Any) -> Any:
        plan = make_plan(steps)
        opts = RunOptions(non_interactive=True, poll_seconds=0.05, **options)
        self.info = create_run(self.journal, plan, self.tmp_path / "plan.json", by, opts)
        self.specs = build_specs(plan, self.library)
        return self.info

    def run(self, factory: Any = None, **kwargs: Any) -> str:
        info = self.journal.run(self.info.id)
        factory = factory or (lambda host: DryRunTransport(host, self.recorder))
        return Runner(self.journal, info, self.specs, factory, **kwargs).run()

    def states(self) -> dict[str, str]:
        return self.journal.step_states(self.info.id)

    def last(self, step: str) -> dict[str, Any]:
        return self.journal.last_step_records(self.info.id)[step].body


@pytest.fixture
def h(journal: Journal, library_dir: Path, tmp_path: Path) -> Harness:
    return Harness(journal, library_dir, tmp_path)


def step(sid: str, kind: str, needs: tuple[str, ...] = (), host: str = "h1", **params: Any):
    return {"id": sid, "kind": kind, "host": host, "needs": list(needs), "params": params}


def test_dry_run_records_every_command_in_dependency_order(h: Harness) -> None:
    h.start(
        [
            step("a", "echo", text="first"),
            step("b", "echo", ("a",), text="x'; rm -rf / #"),
            step("c", "echo", ("b",), host="h2", text="last"),
        ],
        dry_run=True,
    )
    assert h.run() == "succeeded"
    assert [(c.host, c.script) for c in h.recorder.calls] == [
        ("h1", "echo first"),
        ("h1", "echo 'x'\"'\"'; rm -rf / #'"),
        ("h2", "echo last"),
    ]
    assert h.states() == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    assert h.journal.verify_chain(h.info.id).ok


def test_dry_run_records_verifications_without_judging_them(h: Harness) -> None:
    """Nothing answers a dry run, so a verification cannot fail it: it is recorded as what
    would run, after the command, and the step counts as done."""
    h.start([step("a", "verified", text="db1")], dry_run=True)
    assert h.run() == "succeeded"
    assert [c.script for c in h.recorder.calls] == ["echo db1", "status-of db1"]


def test_a_real_run_judges_the_same_verification(h: Harness) -> None:
    h.start([step("a", "verified", text="db1")])
    h.run()
    assert h.last("a")["state"] == "failed"
    assert "verification failed" in h.last("a")["message"]


def test_every_transition_is_journalled_before_the_command_is_sent(h: Harness) -> None:
    h.start([step("a", "echo", text="hi")])
    seen: list[str] = []

    def handler(host: str, command: Command) -> Scripted | None:
        seen.append(h.last("a")["state"])
        return None

    h.recorder.handler = handler
    h.run()
    assert seen == ["running"]
    states = [r.body["state"] for r in h.journal.records(h.info.id, kinds=["step"])]
    assert states == ["ready", "running", "succeeded"]


def test_independent_steps_run_in_parallel_within_locks(h: Harness) -> None:
    import threading

    barrier = threading.Barrier(3, timeout=10)

    def handler(host: str, command: Command) -> Scripted | None:
        barrier.wait()  # only returns if three commands are in flight at once
        return None

    h.recorder.handler = handler
    h.start([step(f"s{i}", "echo", text=str(i)) for i in range(3)], parallel=3)
    assert h.run() == "succeeded"


def test_retries_with_backoff_then_success(h: Harness) -> None:
    h.recorder.rules = rules(("^flaky", [Scripted(exit_code=1), Scripted(exit_code=1), Scripted()]))
    h.start([step("f", "flaky", text="x")])
    assert h.run() == "succeeded"
    attempts = [
        (r.body["state"], r.body["attempt"]) for r in h.journal.records(h.info.id, kinds=["step"])
    ]
    assert attempts[1:] == [
        ("running", 1), ("failed", 1), ("running", 2), ("failed", 2), ("running", 3),
        ("succeeded", 3),
    ]  # fmt: skip


def test_a_step_that_keeps_failing_pauses_and_retry_by_ack_resumes(h: Harness) -> None:
    rule = Rule("^flaky", [Scripted(exit_code=3, stderr=b"disk full")])
    h.recorder.rules = [rule]
    h.start([step("f", "flaky", text="x"), step("after", "echo", ("f",), text="y")])
    assert h.run() == "waiting"
    assert h.last("f")["state"] == "paused"
    assert "exit code 3" in h.last("f")["message"]
    assert rule.used == 3
    rule.answers = [Scripted()]
    assert ack(h.journal, h.info.id, "f", Decision("bob", "retry", "freed space")) == "pending"
    assert h.run() == "succeeded"
    assert h.last("f")["attempt"] == 4
    out = h.journal.outputs(h.info.id, "f")
    assert next(o.data for o in out if o.stream == "stderr") == b"disk full"


def test_on_failure_abort_stops_new_steps(h: Harness) -> None:
    h.start([step("bad", "fragile"), step("later", "echo", ("bad",), text="no")], dry_run=True)
    h.recorder.rules = rules(("^false", Scripted(exit_code=1)))
    assert h.run() == "failed"
    assert h.states() == {"bad": "failed"}
    assert "echo no" not in h.recorder.scripts()


def test_a_timeout_stops_the_command_and_is_recorded(h: Harness) -> None:
    h.start([step("s", "slow", host="orchestrator", seconds=30)])
    assert h.run(lambda host: LocalTransport()) == "failed"
    assert h.last("s")["state"] == "timed_out"
    assert "stopped after 0.3 s" in h.last("s")["message"]


def test_verification_failure_fails_the_step_and_says_why(h: Harness) -> None:
    h.recorder.rules = rules(("^status-of", Scripted(stdout=b"State: Dirty Shutdown\n")))
    h.start([step("v", "verified", text="db")])
    assert h.run() == "failed"
    assert "verification failed" in h.last("v")["message"]
    assert "Dirty Shutdown" in h.last("v")["message"]


def test_manual_step_waits_then_ack_lets_the_run_continue(h: Harness) -> None:
    h.start([step("look", "person", host="operator"), step("then", "echo", ("look",), text="z")])
    assert h.run() == "waiting"
    assert h.recorder.calls == []
    ack(h.journal, h.info.id, "look", Decision("alice", "done", "console says OK"))
    assert h.run() == "succeeded"
    (rec,) = h.journal.records(h.info.id, kinds=["ack"])
    assert rec.body["by"] == "alice" and rec.body["note"] == "console says OK"


def test_interactive_operator_answers_in_the_same_run(h: Harness) -> None:
    class Yes:
        def ask(self, run_id: str, spec: StepSpec, state: str, message: str) -> Decision:
            return Decision("carol", "done", "seen")

    h.start([step("look", "person", host="operator"), step("then", "echo", ("look",), text="z")])
    info = h.journal.run(h.info.id)
    opts = dict(info.options, non_interactive=False)
    h.journal._conn.execute("UPDATE runs SET options=? WHERE id=?", (json.dumps(opts), info.id))
    assert h.run(operator=Yes()) == "succeeded"


def test_destructive_step_needs_a_second_persons_approval(h: Harness, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("x")
    h.start([step("wipe", "wipe", host="orchestrator", file=str(victim))], by="alice")
    assert h.run(lambda host: LocalTransport()) == "waiting"
    assert victim.exists()
    assert "someone other than alice" in h.last("wipe")["message"]
    with pytest.raises(RunStateError, match="second person"):
        ack(h.journal, h.info.id, "wipe", Decision("Alice", "done"))
    assert ack(h.journal, h.info.id, "wipe", Decision("bob", "done", "checked backup")) == "ready"
    assert h.run(lambda host: LocalTransport()) == "succeeded"
    assert not victim.exists()
    approvals = [r.body for r in h.journal.records(h.info.id, kinds=["ack"])]
    assert approvals == [
        {"by": "bob", "decision": "done", "note": "checked backup", "approval": True,
         "from_state": "waiting", "state": "ready"}
    ]  # fmt: skip


def test_turning_two_person_off_is_recorded(h: Harness) -> None:
    h.start([step("wipe", "wipe", file="/nonexistent")], by="alice", two_person=False)
    (opt,) = h.journal.records(h.info.id, kinds=["option"])
    assert opt.body["two_person"] is False and opt.body["by"] == "alice"
    assert h.run() == "waiting"
    assert ack(h.journal, h.info.id, "wipe", Decision("alice", "done")) == "ready"


def test_resume_rechecks_a_step_in_flight_with_its_idempotency_check(
    h: Harness, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    out.write_text("one\n")  # the command ran, then the engine died before recording it
    h.start([step("a", "append-line", host="orchestrator", file=str(out), line="one")])
    h.journal.append(h.info.id, [Entry("step", {"state": "running", "attempt": 1}, "a")])
    assert h.run(lambda host: LocalTransport()) == "succeeded"
    assert out.read_text() == "one\n"
    assert h.last("a")["via"] == "idempotency"


def test_resume_runs_again_a_step_whose_check_says_not_done(h: Harness, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    h.start([step("a", "append-line", host="orchestrator", file=str(out), line="one")])
    h.journal.append(h.info.id, [Entry("step", {"state": "running", "attempt": 1}, "a")])
    assert h.run(lambda host: LocalTransport()) == "succeeded"
    assert out.read_text() == "one\n"
    assert h.last("a")["attempt"] == 2


def test_resume_pauses_a_step_in_flight_without_a_check(h: Harness) -> None:
    h.start([step("e", "echo", text="hi")])
    h.journal.append(h.info.id, [Entry("step", {"state": "running", "attempt": 1}, "e")])
    assert h.run() == "waiting"
    assert h.recorder.calls == []
    assert "no idempotency check" in h.last("e")["message"]
    ack(h.journal, h.info.id, "e", Decision("bob", "done", "it printed"))
    assert h.run() == "succeeded"
    assert h.recorder.calls == []


def test_secrets_come_from_the_environment_and_are_redacted(h: Harness) -> None:
    h.start([step("s", "with-secret", host="orchestrator")])
    env = {"DR_SECRET_DSRM_PASSWORD": "Tr0ub4dor&3"}
    assert h.run(lambda host: LocalTransport(), environ=env) == "succeeded"
    (out,) = h.journal.outputs(h.info.id, "s")
    assert out.data == b"the password is [redacted]\n"
    assert "Tr0ub4dor" not in h.journal.run(h.info.id).plan_json


def test_a_missing_secret_pauses_the_step_naming_the_variable(h: Harness) -> None:
    h.start([step("s", "with-secret")])
    assert h.run(environ={}) == "waiting"
    assert "$DR_SECRET_DSRM_PASSWORD" in h.last("s")["message"]


def test_a_dry_run_needs_no_secret(h: Harness) -> None:
    """A dry run sends nothing: the command is recorded without the secret's value, and the
    step is not paused for want of it (the README tour's `dr run start --dry-run`)."""
    h.start([step("s", "with-secret")], dry_run=True)
    assert h.run(environ={}) == "succeeded"
    assert [c.host for c in h.recorder.calls] == ["h1"]


def _reboot_handler(up_after: int) -> Any:
    state = {"booted": "boot-1", "probes": 0}

    def handler(host: str, command: Command) -> Scripted | None:
        if command.script == "reboot-now":
            state["booted"] = "boot-2"
            return Scripted()
        if "boot_id" in command.script:
            state["probes"] += 1
            if state["booted"] == "boot-2" and state["probes"] <= up_after:
                from engine.errors import HostUnreachable

                return Scripted(raises=HostUnreachable(f"{host}: connection refused"))
            return Scripted(stdout=state["booted"].encode() + b"\n")
        return None

    return handler


def test_reboot_waits_until_the_host_answers_again(h: Harness) -> None:
    h.recorder.handler = _reboot_handler(up_after=3)
    h.start([step("r", "restart", host="dc1")])
    assert h.run() == "succeeded"
    probes = [s for s in h.recorder.scripts() if "boot_id" in s]
    assert len(probes) >= 4
    assert "systemctl is-active" in probes[0] and "WinRM" in probes[0]


def test_reboot_that_never_comes_back_fails_at_the_deadline(h: Harness) -> None:
    h.recorder.handler = _reboot_handler(up_after=10**6)
    h.start([step("r", "restart", host="dc1")])
    assert h.run() == "failed"  # the library's default on_failure is abort
    assert "dc1 did not answer with WinRM, NTDS running within 1.5 s" in h.last("r")["message"]


def test_abort_is_final(h: Harness) -> None:
    h.start([step("look", "person", host="operator")])
    assert h.run() == "waiting"
    abort(h.journal, h.info.id, "alice", "wrong plan")
    with pytest.raises(RunStateError, match="aborted"):
        h.run()
    with pytest.raises(RunStateError):
        ack(h.journal, h.info.id, "look", Decision("bob"))


def test_ack_of_a_step_that_does_not_wait_is_refused(h: Harness) -> None:
    h.start([step("a", "echo", text="x"), step("look", "person", host="operator")])
    assert h.run() == "waiting"
    with pytest.raises(RunStateError, match="only a step waiting"):
        ack(h.journal, h.info.id, "a", Decision("bob"))


def test_two_simultaneous_acks_of_one_step_cannot_both_take_effect(h: Harness) -> None:
    import threading

    h.recorder.rules = rules(("^flaky", Scripted(exit_code=1)))
    h.start([step("f", "flaky", text="x")])
    assert h.run() == "waiting"
    other = Journal.open(h.journal.path)  # a second process's connection
    barrier = threading.Barrier(2)
    results: list[str] = []

    def decide(journal: Journal, who: str) -> None:
        barrier.wait()
        try:
            results.append(ack(journal, h.info.id, "f", Decision(who, "skip")))
        except RunStateError as exc:
            results.append(exc.message)

    threads = [
        threading.Thread(target=decide, args=(j, who))
        for j, who in ((h.journal, "bob"), (other, "carol"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert results.count("skipped") == 1
    (refusal,) = [r for r in results if r != "skipped"]
    assert "step f is skipped: only a step waiting for a person" in refusal
    assert len(h.journal.records(h.info.id, kinds=["ack"])) == 1


FOREVER = """
kinds:
  slow-forever:
    title: Runs until stopped
    variants:
      - action: check
        shell: posix
        command: "sleep 60 & wait"
        timeout_seconds: 120
        on_failure: continue
"""


def test_abort_stops_a_command_already_running_and_records_it(
    h: Harness, library_dir: Path
) -> None:
    import threading

    (library_dir / "forever.yaml").write_text(FOREVER, encoding="utf-8")
    h.library = Library.load(extra_dirs=[library_dir])
    h.start([step("s", "slow-forever", host="orchestrator")])
    started = threading.Event()

    def abort_when_started() -> None:
        while not h.journal.records(h.info.id, kinds=["started"]):
            started.wait(0.01)  # polling the journal for the record another thread writes
        abort(h.journal, h.info.id, "alice", "wrong host")

    threading.Thread(target=abort_when_started, daemon=True).start()
    assert h.run(lambda host: LocalTransport()) == "aborted"
    (stop,) = h.journal.records(h.info.id, kinds=["stop"])
    assert stop.body["by"] == "abort" and stop.body["result"].startswith("stopped process group")
    assert h.last("s")["state"] == "failed"
    assert "stopped by abort" in h.last("s")["message"]
    handle = h.journal.records(h.info.id, kinds=["started"])[0].body["handle"]
    from engine.transports.local import group_members

    assert not group_members(handle["pgid"], handle["start_ticks"])


def test_resume_pauses_a_step_in_flight_on_a_host_it_cannot_reach(h: Harness) -> None:
    from engine.transports.credentials import Credential
    from engine.transports.winrm import WinRMSettings, WinRMTransport

    h.start([step("a", "append-line", host="ex1", file="C:\\x", line="one")])
    handle = {"transport": "winrm", "host": "127.0.0.1", "shell_id": "S1", "command_id": "C1"}
    h.journal.append(
        h.info.id,
        [
            Entry("step", {"state": "running", "attempt": 1}, "a"),
            Entry("started", {"attempt": 1, "handle": handle}, "a"),
        ],
    )
    settings = WinRMSettings(
        host="127.0.0.1", port=9, scheme="http", auth="basic", allow_plaintext=True,
        operation_timeout=1, read_timeout=2,
    )  # fmt: skip
    factory = lambda host: WinRMTransport(settings, Credential("u", "p"))  # noqa: E731
    assert h.run(factory) == "waiting"
    last = h.last("a")
    assert last["state"] == "paused" and last["in_doubt"]
    assert "cannot make sure attempt 1 stopped on ex1" in last["message"]
    assert "E8640" in last["message"]


def test_an_open_question_does_not_hold_up_automated_steps(h: Harness) -> None:
    import threading

    asked = threading.Event()
    order: list[str] = []

    class Slow:
        def ask(self, run_id: str, spec: StepSpec, state: str, message: str) -> Decision:
            asked.set()
            order.append("asked")
            return Decision("carol", "done", "seen")

    def handler(host: str, command: Command) -> Scripted | None:
        assert asked.wait(10), "the question waited for the automated step"
        order.append("command")
        return None

    h.recorder.handler = handler
    h.start([step("look", "person", host="operator"), step("auto", "echo", text="z")])
    info = h.journal.run(h.info.id)
    opts = dict(info.options, non_interactive=False)
    h.journal._conn.execute("UPDATE runs SET options=? WHERE id=?", (json.dumps(opts), info.id))
    assert h.run(operator=Slow()) == "succeeded"
    assert order == ["asked", "command"]


def test_abort_without_a_runner_stops_what_the_journal_left_running(h: Harness) -> None:
    import subprocess

    from engine.transports.local import group_members, process_handle

    h.start([step("s", "echo", host="orchestrator", text="x")])
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    handle = process_handle(orphan.pid)
    h.journal.append(
        h.info.id,
        [
            Entry("step", {"state": "running", "attempt": 1}, "s"),
            Entry("started", {"attempt": 1, "handle": handle}, "s"),
        ],
    )
    abort(h.journal, h.info.id, "alice")
    lines = stop_orphans(h.journal, h.info, lambda host: LocalTransport(), "alice")
    assert lines == ["s: made sure its command is stopped"]
    assert orphan.wait(10) == -15
    assert not group_members(handle["pgid"], handle["start_ticks"])
    (stop,) = h.journal.records(h.info.id, kinds=["stop"])
    assert stop.body["by"] == "alice" and "SIGTERM" in stop.body["result"]


def test_a_held_step_waits_for_a_go_ahead_then_runs_without_a_second_person(
    h: Harness, tmp_path: Path
) -> None:
    """RunOptions.hold (a drill's clean-up, held while the restored copy is inspected): the
    held step waits before it runs; the starter's own acknowledgement releases it — it is a
    pause, not a destructive step's approval."""
    out = tmp_path / "out.txt"
    steps = [
        step("first", "append-line", host="orchestrator", file=str(out), line="one"),
        step("later", "append-line", ("first",), host="orchestrator", file=str(out), line="two"),
    ]
    h.start(steps, by="alice", hold=("later",))
    assert h.run(lambda host: LocalTransport()) == "waiting"
    assert out.read_text().split() == ["one"], "the held step has not run"
    assert h.last("later")["message"].startswith("held: runs when acknowledged")
    assert h.last("later")["second_person"] is False
    assert ack(h.journal, h.info.id, "later", Decision("alice", "done")) == "ready"
    assert h.run(lambda host: LocalTransport()) == "succeeded"
    assert out.read_text().split() == ["one", "two"]
    assert RunOptions.from_dict(h.journal.run(h.info.id).options).hold == ("later",)

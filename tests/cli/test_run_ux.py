"""What `dr run` tells a responder: a failed attempt's reason at once, how to resume after
Ctrl-C, what a plan lacks before it starts, and a dry run that never looks like a restore.

Every test runs the real `dr` in a subprocess, 80 columns wide, its output through a pipe.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def dr(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=env, cwd=ROOT,
        check=False, timeout=120,
    )  # fmt: skip


def popen(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dr", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ, DR_WORKSPACE=str(tmp_path / "ws"), DR_OPERATOR="alice", COLUMNS="80")
    assert dr("init", env=e).returncode == 0
    return e


def library(tmp_path: Path, kinds: dict[str, dict[str, Any]]) -> Path:
    """A step library of posix kinds (one variant each) in tmp_path/lib."""
    lib = tmp_path / "lib"
    lib.mkdir(exist_ok=True)
    doc = {
        name: {"title": name, "params": sorted(v.pop("params", [])),
               "variants": [{"action": "check", "shell": "posix", **v}]}
        for name, v in kinds.items()
    }  # fmt: skip
    (lib / "t.yaml").write_text(yaml.safe_dump({"kinds": doc}), encoding="utf-8")
    return lib


def plan(tmp_path: Path, steps: list[dict[str, Any]], name: str = "plan.json") -> Path:
    from engine.plan import Plan, Step, Target

    made = Plan(
        scenario="t", target=Target(what="t"), created_from="0" * 64,
        steps=[Step(**{"host": "orchestrator", **s}) for s in steps],
    )  # fmt: skip
    return made.sealed().save(tmp_path / name)


def run_ids(env: dict[str, str]) -> list[str]:
    return [r["id"] for r in json.loads(dr("run", "status", "--json", env=env).stdout)]


# -- a failed attempt's reason, at once ---------------------------------------------------


def test_the_reason_is_printed_while_the_retry_waits(tmp_path: Path, env: dict[str, str]) -> None:
    """The reason and the retry come before the backoff, not when the run stops: the test
    reads them from the pipe while dr still waits 600 s, then aborts the run."""
    lib = library(tmp_path, {"share": {
        "command": "echo 'copying' ; echo 'T: share not ready, password=hunter2' >&2; exit 1",
        "retries": 2, "backoff_seconds": 600, "on_failure": "pause",
    }})  # fmt: skip
    proc = popen("run", "start", str(plan(tmp_path, [{"id": "copy", "kind": "share"}])),
                 "--runbooks", str(lib), "--non-interactive", env=env)  # fmt: skip
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        if "retrying in" in line:
            break
    assert seen[-3:] == [
        "copy: attempt 1 of 3 failed — exit code 1",
        "  | T: share not ready, password=[redacted]",
        "  retrying in 600 s (attempt 2 of 3)",
    ]
    assert proc.poll() is None  # still waiting for the retry
    (rid,) = run_ids(env)
    assert dr("run", "abort", rid, env=env).returncode == 0
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 7
    assert "hunter2" not in out


def test_a_configuration_error_is_not_retried(tmp_path: Path, env: dict[str, str]) -> None:
    script = (
        'echo "error E2300 T:\\\\DRTemp is a folder on a Windows host; this machine does not '
        'know where it is mounted" >&2; exit 2'
    )
    lib = library(tmp_path, {"fetch": {
        "command": script, "retries": 2, "backoff_seconds": 600, "on_failure": "pause",
    }})  # fmt: skip
    out = dr("run", "start", str(plan(tmp_path, [{"id": "fetch", "kind": "fetch"}])),
             "--runbooks", str(lib), "--non-interactive", env=env)  # fmt: skip
    assert out.returncode == 10, out.stderr
    lines = out.stdout.splitlines()
    i = lines.index("fetch: attempt 1 of 3 failed — exit code 2")
    assert lines[i + 1].startswith("  | error E2300 T:\\DRTemp is a folder")
    assert lines[i + 2].startswith("  not retried: a dr command refused its input")
    assert lines[i + 3] == "fetch: paused — waiting for the operator"
    assert "retrying" not in out.stdout
    status = json.loads(dr("run", "status", run_ids(env)[0], "--json", env=env).stdout)
    assert status["steps"][0]["attempt"] == 1 and status["steps"][0]["state"] == "paused"
    assert "not retried" in status["steps"][0]["message"]
    assert f"dr run ack {run_ids(env)[0]} fetch --by alice --decision retry" in out.stderr


# -- Ctrl-C -------------------------------------------------------------------------------


def test_ctrl_c_stops_the_run_and_resume_finishes_it(tmp_path: Path, env: dict[str, str]) -> None:
    """SIGINT while a slow local step runs: dr stops the command, says how to resume, exits
    130; resume re-checks the step (its command was stopped, so it is not done) and runs it
    again to success. The step tells the test it runs through a FIFO, so no timing guess."""
    fifo, marker, out = tmp_path / "fifo", tmp_path / "marker", tmp_path / "out.txt"
    os.mkfifo(fifo)
    slow = (
        f"if [ ! -e {marker} ]; then touch {marker}; echo started > {fifo}; sleep 60; fi; "
        f"echo done >> {out}"
    )
    lib = library(tmp_path, {"slow": {
        "command": slow, "idempotency": {"command": f"grep -qx done {out}"},
        "timeout_seconds": 300,
    }})  # fmt: skip
    proc = popen("run", "start", str(plan(tmp_path, [{"id": "slow", "kind": "slow"}])),
                 "--runbooks", str(lib), "--non-interactive", env=env)  # fmt: skip
    told: list[str] = []
    reader = threading.Thread(target=lambda: told.append(fifo.read_text()), daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert told == ["started\n"], "the slow step did not start"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    (rid,) = run_ids(env)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"interrupted: run {rid} stopped; continue with: dr run resume {rid}"
    )
    assert "Traceback" not in stderr and not out.exists()
    assert json.loads(dr("run", "status", rid, "--json", env=env).stdout)["state"] == "interrupted"
    resumed = dr("run", "resume", rid, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_text() == "done\n"
    from engine.journal import Journal

    with Journal.open(tmp_path / "ws" / "journal.sqlite") as journal:
        stops = journal.records(rid, kinds=["stop"])
        assert [r.body["by"] for r in stops][:1] == ["interrupt"]
        assert journal.verify_chain(rid).ok


# -- what a plan needs, before it starts -------------------------------------------------


@pytest.fixture
def estate(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    """A workspace with the example estate, a repository and one run dr stored itself;
    the repository passphrase is set only for the commands that make them."""
    e = dict(env, DR_KDF_PROFILE="fast", DR_KEY_DIR=str(tmp_path / "keys"))
    made = dict(e, DR_PASSPHRASE="the store passphrase")
    for args in (
        ("init", "--inventory", str(ROOT / "examples" / "estate.yaml")),
        ("store", "init", str(tmp_path / "repo")),
        ("set", "add", "files", "--host", "EX2016", "--type", "files"),
    ):
        assert dr(*args, env=made).returncode == 0, args
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n")
    out = dr("backup", "run", "files", "--from", str(tmp_path / "src"), "--json", env=made)
    assert out.returncode == 0, out.stderr
    e["RUN"] = f"run-{json.loads(out.stdout)['catalog_run']}"
    return e


def restore_plan(tmp_path: Path, run: str) -> tuple[Path, Path]:
    """A fetch of ``run`` into EX2016's staging folder, then a PowerShell step on EX2016."""
    from engine.plan import SecretRef

    lib = library(tmp_path, {})
    (lib / "ps.yaml").write_text(yaml.safe_dump({"kinds": {"look": {
        "title": "look", "variants": [{"action": "powershell", "command": "Get-Date"}],
    }}}), encoding="utf-8")  # fmt: skip
    passphrase = SecretRef(name="repository-passphrase", location="kept", env="DR_PASSPHRASE")
    fetch = {
        "id": "fetch",
        "kind": "fetch-artifacts",
        "secrets": [passphrase],
        "params": {"versions": [run], "dest": "T:\\DRStaging\\SG1", "host": "EX2016"},
    }
    look = {"id": "look", "kind": "look", "host": "EX2016", "needs": ["fetch"]}
    return plan(tmp_path, [fetch, look]), lib  # fmt: skip


def test_check_names_what_is_missing_and_start_refuses(
    tmp_path: Path, estate: dict[str, str]
) -> None:
    path, lib = restore_plan(tmp_path, estate["RUN"])
    out = dr("run", "start", str(path), "--check", "--json", "--runbooks", str(lib), env=estate)
    assert out.returncode == 2, out.stderr
    report = json.loads(out.stdout)
    found = {(f["check"], f["ok"]) for f in report["findings"]}
    assert found == {
        ("transport", True),  # the orchestrator runs the fetch itself
        ("transport", False),  # EX2016: no transport
        ("staging", False),  # T:\DRStaging: this machine does not know where it is
        ("repository", True),
        ("secret", False),  # $DR_PASSPHRASE is not set
    }
    assert not report["ok"]
    table = dr("run", "start", str(path), "--check", "--runbooks", str(lib), env=estate)
    assert table.returncode == 2 and "MISSING" in table.stdout and "Traceback" not in table.stderr
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    refused = dr("run", "start", str(path), "--runbooks", str(lib), env=estate)
    assert refused.returncode == 2
    assert "E2800" in refused.stderr and "MISSING" in refused.stderr
    assert f"dr run start {path} --check" in refused.stderr
    assert run_ids(estate) == []  # nothing recorded
    # --limit: the check looks only at what will run; EX2016's step is left out
    limited = dr("run", "start", str(path), "--check", "--json", "--runbooks", str(lib),
                 "--limit", "orchestrator", env=estate)  # fmt: skip
    hosts = {f["subject"] for f in json.loads(limited.stdout)["findings"]
             if f["check"] == "transport"}  # fmt: skip
    assert "EX2016" not in hosts, limited.stdout


def test_check_passes_once_everything_is_there_and_never_prints_a_secret(
    tmp_path: Path, estate: dict[str, str]
) -> None:
    from dr.workspace import Workspace

    path, lib = restore_plan(tmp_path, estate["RUN"])
    ws = Workspace(Path(estate["DR_WORKSPACE"]))
    ws.update_config(
        staging={"EX2016": {"T:\\DRStaging": str(tmp_path / "ex2016-staging")}},
        hosts={"EX2016": {"kind": "winrm", "host": "127.0.0.1", "scheme": "http",
                          "auth": "basic", "allow_plaintext": True}},
    )  # fmt: skip
    ready = dict(estate, DR_PASSPHRASE="s3cret-pass", DR_WINRM_USER="op", DR_WINRM_PASSWORD="pw-9")
    out = dr("run", "start", str(path), "--check", "--json", "--runbooks", str(lib), env=ready)
    assert out.returncode == 0, out.stdout
    report = json.loads(out.stdout)
    assert report["ok"] and {f["check"] for f in report["findings"]} == {
        "transport", "credential", "staging", "repository", "secret"
    }  # fmt: skip
    assert "s3cret-pass" not in out.stdout and "pw-9" not in out.stdout
    no_key = dict(ready, DR_KEY_DIR=str(tmp_path / "elsewhere"))
    out = dr("run", "start", str(path), "--check", "--json", "--runbooks", str(lib), env=no_key)
    (repo,) = [f for f in json.loads(out.stdout)["findings"] if f["check"] == "repository"]
    assert out.returncode == 2 and not repo["ok"] and "no key file" in repo["detail"]


def test_a_dry_run_needs_no_host_or_folder(tmp_path: Path, estate: dict[str, str]) -> None:
    """It sends nothing, so no transport or staging folder is asked for (its steps still
    name their secrets, to record the commands as they would be sent)."""
    path, lib = restore_plan(tmp_path, estate["RUN"])
    with_secret = dict(estate, DR_PASSPHRASE="s3cret-pass")
    out = dr("run", "start", str(path), "--dry-run", "--runbooks", str(lib), env=with_secret)
    assert out.returncode == 0, out.stderr


# -- dry runs -----------------------------------------------------------------------------


def test_a_dry_run_never_reads_as_a_restore(tmp_path: Path, env: dict[str, str]) -> None:
    lib = library(tmp_path, {"say": {"params": ["text"], "command": "echo {{ text }}"}})
    steps = [{"id": f"s{i}", "kind": "say", "params": {"text": f"t{i}"}} for i in range(3)]
    env = dict(env, DR_KEY_DIR=str(tmp_path / "keys"))
    out = dr("run", "start", str(plan(tmp_path, steps)), "--dry-run", "--runbooks", str(lib),
             env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "3 steps — DRY RUN — nothing is sent" in out.stdout
    assert "s0: recorded" in out.stdout and "nothing restored (DRY RUN" in out.stdout
    (rid,) = run_ids(env)
    listing = dr("run", "status", env=env).stdout
    assert "dry run: 3/3 recorded" in listing
    one = dr("run", "status", rid, env=env).stdout
    assert one.startswith("DRY RUN — nothing was sent") and "recorded" in one
    log = dr("run", "log", rid, "s0", env=env).stdout
    assert log.startswith("DRY RUN — nothing was sent")
    for text in (out.stdout, listing, one, log):
        assert "succeeded" not in text
    assert json.loads(dr("run", "status", rid, "--json", env=env).stdout)["dry_run"] is True
    assert all(r["dry_run"] for r in json.loads(dr("run", "status", "--json", env=env).stdout))
    assert dr("evidence", "keygen", env=env).returncode == 0
    assert dr("evidence", "record", rid, env=env).returncode == 0
    shown = dr("evidence", "show", rid, env=env).stdout
    assert shown.startswith("DRY RUN — nothing was sent") and "succeeded" not in shown


def test_a_run_takes_the_repository_passphrase_from_a_password_file(
    tmp_path: Path, estate: dict[str, str]
) -> None:
    """With only $DR_PASSWORD_FILE, the fetch step still gets the passphrase it declares
    (through $DR_PASSPHRASE, which the engine hands to that step alone) and fetches."""
    from dr.workspace import Workspace

    path, lib = restore_plan(tmp_path, estate["RUN"])
    only_fetch = plan(tmp_path, [json.loads(path.read_text())["steps"][0]], name="fetch.json")
    staging = tmp_path / "ex2016-staging"
    Workspace(Path(estate["DR_WORKSPACE"])).update_config(
        staging={"EX2016": {"T:\\DRStaging": str(staging)}}
    )
    secret = tmp_path / "passphrase"
    secret.write_text("the store passphrase\n", encoding="utf-8")
    env = {k: v for k, v in estate.items() if k != "DR_PASSPHRASE"}
    env["DR_PASSWORD_FILE"] = str(secret)
    check = dr(
        "run", "start", str(only_fetch), "--check", "--json", "--runbooks", str(lib), env=env
    )
    assert check.returncode == 0, check.stdout
    out = dr("run", "start", str(only_fetch), "--runbooks", str(lib), env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (staging / "SG1" / estate["RUN"] / "a.txt").read_text() == "a\n"
    (rid,) = run_ids(env)
    log = dr("run", "log", rid, "fetch", env=env)
    assert "the store passphrase" not in out.stdout + out.stderr + log.stdout + log.stderr
    del env["DR_PASSWORD_FILE"]
    assert dr("run", "start", str(only_fetch), "--runbooks", str(lib), env=env).returncode == 2


def test_resume_non_interactive_does_not_prompt_even_at_a_terminal(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """`dr run resume --non-interactive` from a terminal stops with exit 10 at the next
    manual step instead of asking (without the flag, at a terminal, it would ask)."""
    import pty

    lib = tmp_path / "lib"
    lib.mkdir()
    doc = {"kinds": {"by-hand": {"title": "by hand", "params": [], "variants": [
        {"action": "manual", "instructions": "Do the thing."}]}}}  # fmt: skip
    (lib / "t.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    path = plan(tmp_path, [{"id": "a", "kind": "by-hand"}, {"id": "b", "kind": "by-hand",
                                                              "needs": ["a"]}])  # fmt: skip
    started = dr("run", "start", str(path), "--runbooks", str(lib), env=env)  # not a terminal
    assert started.returncode == 10, started.stdout + started.stderr
    (rid,) = run_ids(env)
    assert (
        dr("run", "ack", rid, "a", "--by", "alice", "--decision", "done", env=env).returncode == 0
    )
    leader, follower = pty.openpty()
    try:
        resumed = subprocess.run(
            [sys.executable, "-m", "dr", "run", "resume", rid, "--non-interactive"],
            stdin=follower, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
        )  # fmt: skip
    finally:
        os.close(follower)
        os.close(leader)
    assert resumed.returncode == 10, resumed.stdout + resumed.stderr
    assert "b (waiting)" in resumed.stdout + resumed.stderr


# -- following a run, and how long its steps took ------------------------------------------


def test_log_follow_prints_the_journal_as_it_grows_until_the_run_ends(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """`dr run log RUN --follow` started while the run waits for a person keeps reading: the
    steps after the acknowledgement appear, with what they printed, and it ends (exit 0)
    when the run succeeds. `dr run status` then shows end times and durations."""
    lib = library(tmp_path, {"say": {"command": "echo 'restored DB01 at last'"}})
    doc = yaml.safe_load((lib / "t.yaml").read_text())
    doc["kinds"]["by-hand"] = {"title": "by hand", "params": [], "variants": [
        {"action": "manual", "instructions": "Do the thing."}]}  # fmt: skip
    (lib / "t.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    path = plan(tmp_path, [{"id": "a", "kind": "by-hand"},
                           {"id": "b", "kind": "say", "needs": ["a"]}])  # fmt: skip
    started = dr("run", "start", str(path), "--runbooks", str(lib), env=env)
    assert started.returncode == 10, started.stdout + started.stderr
    (rid,) = run_ids(env)
    follower = popen("run", "log", rid, "--follow", env=env)
    try:
        assert follower.stdout is not None
        for line in follower.stdout:  # read until it has printed the wait (no sleep)
            if "a: waiting" in line:
                break
        assert dr("run", "ack", rid, "a", "--by", "alice", env=env).returncode == 0
        resumed = dr("run", "resume", rid, "--non-interactive", env=env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        rest, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    assert "b: succeeded attempt 1" in rest and "restored DB01 at last" in rest
    assert rest.rstrip().endswith("run: succeeded")
    status = json.loads(dr("run", "status", rid, "--json", env=env).stdout)
    assert status["ended"] is not None and status["duration_seconds"] >= 0
    (b,) = [s for s in status["steps"] if s["id"] == "b"]
    assert b["ended"] is not None and b["duration_seconds"] >= 0
    shown = dr("run", "status", rid, env=env).stdout
    assert "ended" in shown and "took" in shown and "…" not in shown


def test_verbose_prints_each_command_sent_and_what_it_printed(
    tmp_path: Path, env: dict[str, str]
) -> None:
    lib = library(tmp_path, {"say": {"command": "echo 'the share answers'; echo 'slow disk' >&2"}})
    path = plan(tmp_path, [{"id": "a", "kind": "say"}])
    quiet = dr("run", "start", str(path), "--runbooks", str(lib), env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert "echo 'the share answers'" not in quiet.stdout
    loud = dr("run", "start", str(path), "--runbooks", str(lib), "-v", env=env)
    assert loud.returncode == 0, loud.stderr
    out = loud.stdout
    assert "→ orchestrator (posix):" in out
    assert "echo 'the share answers'; echo 'slow disk' >&2" in out
    assert "← orchestrator: exit code 0" in out
    assert "stdout: the share answers" in out and "stderr: slow disk" in out


def test_start_at_leaves_out_the_steps_before_but_never_a_destructive_steps_precondition(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """`--start-at d`: a (before it) is recorded skipped and never runs; g (before it too)
    still runs because destructive d needs it; d then waits for its approval as always."""
    marks = tmp_path / "marks"
    marks.mkdir()
    lib = library(tmp_path, {name: {"command": f"touch {marks / name}"} for name in "agde"})
    path = plan(tmp_path, [
        {"id": "a", "kind": "a"}, {"id": "g", "kind": "g", "needs": ["a"]},
        {"id": "d", "kind": "d", "needs": ["g"], "destructive": True},
        {"id": "e", "kind": "e", "needs": ["d"]},
    ])  # fmt: skip
    out = dr("run", "start", str(path), "--runbooks", str(lib), "--start-at", "d",
             "--non-interactive", env=env)  # fmt: skip
    assert out.returncode == 10, out.stdout + out.stderr  # d waits for its approval
    assert "left out: a — before --start-at d" in out.stdout
    assert "still runs: g — destructive step d needs it" in out.stdout
    assert sorted(p.name for p in marks.iterdir()) == ["g"]  # a never ran; d not yet
    (rid,) = run_ids(env)
    steps = {s["id"]: s for s in json.loads(dr("run", "status", rid, "--json", env=env).stdout)
             ["steps"]}  # fmt: skip
    assert steps["a"]["state"] == "skipped" and "before --start-at d" in steps["a"]["message"]
    assert steps["g"]["state"] == "succeeded" and steps["d"]["state"] == "waiting"


def test_limit_runs_only_that_hosts_steps_and_refuses_an_unknown_host(
    tmp_path: Path, env: dict[str, str]
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    lib = library(tmp_path, {name: {"command": f"touch {marks / name}"} for name in "ab"})
    path = plan(tmp_path, [{"id": "a", "kind": "a", "host": "localhost"},
                           {"id": "b", "kind": "b"}])  # fmt: skip
    refused = dr("run", "start", str(path), "--runbooks", str(lib), "--limit", "EX9", env=env)
    assert refused.returncode == 2 and "--limit EX9: no step of the plan runs there" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr
    out = dr("run", "start", str(path), "--runbooks", str(lib), "--limit", "orchestrator",
             env=env)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "left out: a — not on --limit orchestrator" in out.stdout
    assert sorted(p.name for p in marks.iterdir()) == ["b"]
    # it succeeded for what it ran, and says it is not a whole restore, everywhere
    assert "succeeded with 1 step(s) left out or skipped" in out.stdout
    assert "not a whole restore" in out.stdout
    (rid,) = run_ids(env)
    listing = dr("run", "status", env=env)
    assert "succeeded, 1 skipped" in listing.stdout, listing.stdout
    shown = json.loads(dr("run", "status", rid, "--json", env=env).stdout)
    assert shown["state"] == "succeeded" and shown["steps_skipped"] == 1


def test_log_follow_json_is_one_object_a_line_and_ends_with_the_run(
    tmp_path: Path, env: dict[str, str]
) -> None:
    lib = library(tmp_path, {"say": {"command": "echo 'db01 mounted'"}})
    path = plan(tmp_path, [{"id": "a", "kind": "say"}])
    assert dr("run", "start", str(path), "--runbooks", str(lib), env=env).returncode == 0
    (rid,) = run_ids(env)
    out = dr("run", "log", rid, "--follow", "--json", env=env)
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert records[-1]["kind"] == "run" and records[-1]["body"]["state"] == "succeeded"
    (done,) = [r for r in records if r["step"] == "a" and r["body"].get("state") == "succeeded"]
    assert "db01 mounted" in done["outputs"][0]["text"]

"""`dr evidence` on real runs: automatic records, contents, no secrets, failures, tampering."""

from __future__ import annotations

import json
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

from tests.evidence.conftest import SECRET, Env, failing_plan, good_plan, run_good


def show(env: Env, rid: str) -> dict[str, Any]:
    return dict(json.loads(env.dr("evidence", "show", rid, "--json").stdout))


def verify(env: Env, path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    out = env.dr("evidence", "verify", str(path), "--json", *extra, ok=False)
    assert "Traceback" not in out.stderr
    return out.returncode, json.loads(out.stdout)


def failed_categories(report: dict[str, Any]) -> set[str]:
    return {c["category"] for c in report["failed"]}


def test_keygen_keeps_the_key_private_and_refuses_to_overwrite(env: Env) -> None:
    out = env.dr("evidence", "keygen")
    keys = env.tmp / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert stat.S_IMODE((keys / "evidence-ed25519.pem").stat().st_mode) == 0o600
    assert "ssh-ed25519 AAAA" in out.stdout and str(keys) in out.stdout
    assert not list(env.workspace.rglob("*.pem"))  # nothing of the key in the workspace
    again = env.dr("evidence", "keygen", ok=False)
    assert again.returncode == 7 and "refusing to overwrite" in again.stderr
    assert "Traceback" not in again.stderr


def test_a_finished_run_is_recorded_with_what_auditors_ask_for(env: Env) -> None:
    env.dr("evidence", "keygen")
    rid = run_good(env, good_plan(env.tmp))
    pred = show(env, rid)["statement"]["predicate"]
    assert pred["kind"] == "incident" and pred["sampling"] is None
    ident = pred["identity"]
    plan = json.loads((env.tmp / "plan.json").read_text())
    assert ident["plan_digest"] == plan["digest"] and ident["estate_digest"] == "e" * 64
    assert set(ident["step_library"]) == {"append-line", "with-secret", "wipe"}
    steps = {s["id"]: s for s in pred["steps"]}
    assert [s["state"] for s in steps.values()] == ["succeeded"] * 3
    assert all(s["started_at"] <= s["finished_at"] for s in steps.values())
    assert steps["a"]["exit_code"] == 0 and steps["a"]["attempts"] == 1
    logged = json.loads(env.dr("run", "log", rid, "a", "--json").stdout)
    assert [o["sha256"] for o in steps["a"]["outputs"]] == [o["sha256"] for o in logged]
    assert [(a["step"], a["by"]) for a in pred["approvals"]] == [("wipe", "bob")]
    people = {p["name"]: p["roles"] for p in pred["participants"]}
    assert people["alice"] == ["started the run"]
    assert people["bob"] == ["approved a destructive step"]
    res = pred["results"]
    assert res["verdict"] == "PASSED" and res["rto_met"] is True and res["rpo_met"] is True
    assert res["achieved_rpo_seconds"] == 120.0 and res["measured_rto_seconds"] > 0
    assert pred["deviations"] == [] and pred["integrity"]["journal_chain_ok"] is True
    code, report = verify(env, env.workspace / "evidence")
    assert code == 0 and report["ok"], report["failed"]


def test_a_secret_is_named_but_its_value_never_appears(env: Env) -> None:
    env.dr("evidence", "keygen")
    rid = run_good(env, good_plan(env.tmp))
    pred = show(env, rid)["statement"]["predicate"]
    secret_step = next(s for s in pred["steps"] if s["id"] == "s")
    assert secret_step["secrets"] == [{"name": "dsrm-password", "location": "vault dr/dsrm"}]
    env.dr("evidence", "export", rid, "-o", str(env.tmp / "export"))
    files = [*(env.workspace / "evidence").rglob("*"), *(env.tmp / "export").rglob("*")]
    texts = [f.read_bytes() for f in files if f.is_file()]
    assert texts and not [t for t in texts if SECRET.encode() in t]
    payload = json.dumps(show(env, rid))
    assert "dsrm-password" in payload and SECRET not in payload


def test_a_missing_key_says_how_to_create_one_and_the_run_still_succeeds(env: Env) -> None:
    plan = good_plan(env.tmp)
    lib = str(env.library)
    env.dr("run", "start", str(plan), "--runbooks", lib, "--non-interactive", ok=False)
    rid = env.last_run()
    env.dr("run", "ack", rid, "wipe", "--by", "bob")
    done = env.dr("run", "resume", rid)
    assert "dr evidence keygen" in done.stderr and f"dr evidence record {rid}" in done.stderr
    assert not (env.workspace / "evidence" / "log.jsonl").exists()
    env.dr("evidence", "keygen")
    assert "signed and logged" in env.dr("evidence", "record", rid).stdout
    assert "already recorded" in env.dr("evidence", "record", rid).stdout
    corrected = env.dr("evidence", "record", rid, "--corrective", "raise the RTO estimate")
    assert "000002" in corrected.stdout
    assert show(env, rid)["statement"]["predicate"]["corrective_actions"] == [
        "raise the RTO estimate"
    ]


def test_a_failed_run_is_a_signed_failed_record_with_its_deviations(env: Env) -> None:
    env.dr("evidence", "keygen")
    lib = str(env.library)
    out = env.dr("run", "start", str(failing_plan(env.tmp)), "--runbooks", lib, ok=False)
    assert out.returncode == 7 and "evidence: record 000001" in out.stderr
    pred = show(env, env.last_run())["statement"]["predicate"]
    assert pred["kind"] == "drill" and pred["results"]["verdict"] == "FAILED"
    (step,) = pred["steps"]
    assert step["state"] == "failed" and step["exit_code"] == 3 and step["attempts"] == 2
    kinds = [d["kind"] for d in pred["deviations"]]
    assert kinds.count("failed") == 2 and "retried" in kinds


def test_an_rto_over_the_sla_fails_the_verdict(env: Env) -> None:
    env.dr("evidence", "keygen")
    rid = run_good(env, good_plan(env.tmp, rto=0.001))
    res = show(env, rid)["statement"]["predicate"]["results"]
    assert res["outcome"] == "succeeded" and res["rto_met"] is False
    assert res["verdict"] == "FAILED"


def test_an_unfinished_run_is_not_recorded(env: Env) -> None:
    env.dr("evidence", "keygen")
    lib = str(env.library)
    env.dr(
        "run", "start", str(good_plan(env.tmp)), "--runbooks", lib, "--non-interactive", ok=False
    )
    out = env.dr("evidence", "record", env.last_run(), ok=False)
    assert out.returncode == 7 and "not finished" in out.stderr


def test_verify_names_what_failed(env: Env) -> None:
    env.dr("evidence", "keygen")
    rid = run_good(env, good_plan(env.tmp))
    export = env.tmp / "export"
    env.dr("evidence", "export", rid, "-o", str(export))
    assert verify(env, export)[0] == 0

    def tampered(name: str, edit: Any) -> dict[str, Any]:
        copy = Path(tempfile.mkdtemp(dir=env.tmp)) / "export"
        shutil.copytree(export, copy)
        path = copy / name
        path.write_bytes(edit(path.read_bytes()))
        code, report = verify(env, copy)
        assert code == 7 and not report["ok"]
        return report

    journal = tampered("journal.json", lambda b: b.replace(b"bob", b"bab"))
    assert failed_categories(journal) == {"digest", "chain"}  # its digest, and its own chain
    cut = tampered("journal.json", lambda b: b[: len(b) // 2])  # not JSON any more
    assert failed_categories(cut) == {"digest", "chain"}
    assert any("unreadable" in c["what"] for c in cut["failed"])
    envelope = tampered("envelope.json", lambda b: b.replace(b'"payload": "ey', b'"payload": "eY'))
    assert "signature" in failed_categories(envelope)
    cp = tampered("log/checkpoint.txt", lambda b: b.replace(b"size 1", b"size 2"))
    assert failed_categories(cp) == {"checkpoint"}
    other = env.tmp / "other-keys"
    env.vars["DR_KEY_DIR"] = str(other)
    env.dr("evidence", "keygen")
    code, report = verify(env, export, "--pubkey", str(other / "evidence-ed25519.pub.pem"))
    assert code == 7 and {"signature", "checkpoint"} <= failed_categories(report)


def test_verify_of_the_log_detects_a_removed_or_reordered_record(env: Env) -> None:
    env.dr("evidence", "keygen")
    rid = run_good(env, good_plan(env.tmp))
    for n in (2, 3):
        env.dr("evidence", "record", rid, "--corrective", f"action {n}")
    log = env.workspace / "evidence"
    assert verify(env, log)[0] == 0
    lines = (log / "log.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) == 3

    def with_lines(new: list[bytes]) -> set[str]:
        copy = env.tmp / f"log-{len(list(env.tmp.glob('log-*')))}"
        shutil.copytree(log, copy)
        (copy / "log.jsonl").write_bytes(b"".join(new))
        code, report = verify(env, copy)
        assert code == 7
        return failed_categories(report)

    assert "chain" in with_lines([lines[0], lines[2]])  # the middle record removed
    assert with_lines(lines[:2]) == {"checkpoint"}  # the last record removed
    assert "chain" in with_lines([lines[0], lines[2], lines[1]])  # reordered

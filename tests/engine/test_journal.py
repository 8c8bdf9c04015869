"""The journal: durable records, a hash chain that shows tampering, capped compressed output."""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
from pathlib import Path

import pytest

from engine.errors import JournalError, RunNotFound
from engine.journal import OUTPUT_CAP, Entry, Journal, Output, cap
from engine.redact import Redactor


def new_run(journal: Journal) -> str:
    info = journal.create_run(
        plan_json='{"steps": []}',
        plan_digest="d" * 64,
        plan_path="/plans/p.json",
        started_by="alice",
        options={"parallel": 2},
    )
    return info.id


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal.open(tmp_path / "journal.sqlite")
    yield j
    j.close()


def test_a_run_keeps_plan_digest_path_copy_and_starter(journal: Journal) -> None:
    run = new_run(journal)
    info = journal.run(run[:4])
    assert (info.plan_digest, info.plan_path, info.started_by) == (
        "d" * 64,
        "/plans/p.json",
        "alice",
    )
    assert info.plan_json == '{"steps": []}'
    assert journal.run_state(run) == "created"


def test_unknown_run_is_a_clear_error(journal: Journal) -> None:
    with pytest.raises(RunNotFound, match="not a run"):
        journal.run("nope")


def test_records_survive_reopening_and_fold_into_step_states(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite") as journal:
        run = new_run(journal)
        journal.append(run, [Entry("step", {"state": "running", "attempt": 1}, "s1")])
        journal.append(run, [Entry("step", {"state": "succeeded", "attempt": 1}, "s1")])
    with Journal.open(tmp_path / "j.sqlite") as journal:
        assert journal.step_states(run) == {"s1": "succeeded"}
        assert [r.n for r in journal.records(run)] == [1, 2, 3]


def test_the_chain_verifies_and_links_each_record_to_the_one_before(journal: Journal) -> None:
    run = new_run(journal)
    journal.append(run, [Entry("step", {"state": "running"}, "s1")] * 3)
    report = journal.verify_chain(run)
    assert report.ok, report.problems
    recs = journal.records(run)
    assert all(b.prev == a.hash for a, b in itertools.pairwise(recs))
    assert report.head == recs[-1].hash


def test_editing_a_record_is_detected(journal: Journal, tmp_path: Path) -> None:
    run = new_run(journal)
    journal.append(run, [Entry("ack", {"by": "bob", "note": "approved"}, "wipe")])
    journal.append(run, [Entry("step", {"state": "succeeded"}, "wipe")])
    raw = sqlite3.connect(tmp_path / "journal.sqlite")
    raw.execute(
        "UPDATE records SET body=? WHERE run_id=? AND n=2",
        (json.dumps({"by": "mallory", "note": "approved"}), run),
    )
    raw.commit()
    raw.close()
    report = journal.verify_chain(run)
    assert not report.ok
    assert any("record 2" in p and "edited" in p for p in report.problems)


def test_deleting_a_record_is_detected(journal: Journal, tmp_path: Path) -> None:
    run = new_run(journal)
    journal.append(run, [Entry("step", {"state": s}, "s") for s in ("running", "failed")])
    raw = sqlite3.connect(tmp_path / "journal.sqlite")
    raw.execute("DELETE FROM records WHERE run_id=? AND n=2", (run,))
    raw.commit()
    raw.close()
    assert not journal.verify_chain(run).ok


def test_a_swapped_plan_copy_is_detected(journal: Journal, tmp_path: Path) -> None:
    run = new_run(journal)
    raw = sqlite3.connect(tmp_path / "journal.sqlite")
    raw.execute("UPDATE runs SET plan_json='{\"steps\": [1]}' WHERE id=?", (run,))
    raw.commit()
    raw.close()
    assert any("plan" in p for p in journal.verify_chain(run).problems)


def test_output_is_capped_compressed_and_digested(journal: Journal, tmp_path: Path) -> None:
    run = new_run(journal)
    big = b"A" * OUTPUT_CAP + b"MIDDLE" + b"Z" * OUTPUT_CAP
    journal.append(run, [], [Output("s1", 1, "command", "stdout", big)])
    (stored,) = journal.outputs(run, "s1")
    assert stored.size == len(big)
    assert stored.sha256 == hashlib.sha256(big).hexdigest()
    assert stored.cut == len(big) - OUTPUT_CAP
    assert stored.data.startswith(b"A" * 1000) and stored.data.endswith(b"Z" * 1000)
    assert b"MIDDLE" not in stored.data and b"bytes cut by dr" in stored.data
    blob = (
        sqlite3.connect(tmp_path / "journal.sqlite").execute("SELECT data FROM outputs").fetchone()
    )
    assert len(blob[0]) < 10_000  # zstd: 2 MiB of repeated bytes is tiny
    rec = journal.records(run, kinds=["output"])[0]
    assert rec.body["sha256"] == stored.sha256
    assert journal.verify_chain(run).ok


def test_tampered_output_is_detected(journal: Journal, tmp_path: Path) -> None:
    import zstandard

    run = new_run(journal)
    journal.append(run, [], [Output("s1", 1, "command", "stdout", b"exit 0, all good")])
    raw = sqlite3.connect(tmp_path / "journal.sqlite")
    forged = zstandard.ZstdCompressor().compress(b"something else")
    raw.execute("UPDATE outputs SET data=?", (forged,))
    raw.commit()
    raw.close()
    assert any("output" in p for p in journal.verify_chain(run).problems)


def test_cap_keeps_small_output_whole() -> None:
    assert cap(b"hello") == (b"hello", 0)


def test_two_journals_on_one_file_never_fork_the_chain(tmp_path: Path) -> None:
    """The runner and `dr run ack` write from different processes (here: connections)."""
    a = Journal.open(tmp_path / "j.sqlite")
    b = Journal.open(tmp_path / "j.sqlite")
    run = new_run(a)
    for i in range(20):
        (a if i % 2 else b).append(run, [Entry("step", {"state": "running", "i": i}, "s")])
    assert a.verify_chain(run).ok
    assert b.count(run) == 21
    a.close()
    b.close()


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("net user admin password=Sup3r!", "Sup3r!"),
        ("Set-ADAccountPassword -NewPassword 'it''s secret' -Reset", "secret"),
        ("$p = ConvertTo-SecureString 'hunter2' -AsPlainText -Force", "hunter2"),
        ("ntdsutil -DsrmPassword Xy9", "Xy9"),
        ("the key is kms-start-9 ok", "kms-start-9"),
    ],
)
def test_redaction_hides_known_values_and_secret_shapes(text: str, hidden: str) -> None:
    out = Redactor(["kms-start-9"]).text(text)
    assert hidden not in out
    assert "[redacted]" in out


def test_redaction_of_bytes_keeps_undecodable_bytes() -> None:
    data = b"\xff\xfe password=abc \x00"
    out = Redactor().data(data)
    assert out.startswith(b"\xff\xfe") and b"abc" not in out


def test_appends_from_many_threads_share_commits_and_keep_one_chain(tmp_path: Path) -> None:
    import threading

    journal = Journal.open(tmp_path / "j.sqlite")
    run = new_run(journal)
    before = journal.commits
    barrier = threading.Barrier(8)

    def worker(k: int) -> None:
        barrier.wait()
        for i in range(25):
            records = journal.append(run, [Entry("step", {"state": "running", "k": k, "i": i})])
            assert journal.count(run) >= records[0].n  # durable and visible on return

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert journal.count(run) == 1 + 8 * 25
    assert journal.verify_chain(run).ok
    assert journal.commits - before <= 8 * 25  # never more commits than appends
    journal.close()


def test_a_checked_append_that_refuses_writes_nothing_and_spares_the_others(
    journal: Journal,
) -> None:
    run = new_run(journal)

    def refuse(view: object) -> list[Entry]:
        raise RunNotFound("no such thing")

    with pytest.raises(RunNotFound):
        journal.append_checked(run, refuse)
    journal.append(run, [Entry("step", {"state": "running"}, "s")])
    assert [r.n for r in journal.records(run)] == [1, 2]
    assert journal.verify_chain(run).ok


def test_sync_mode_is_full_unless_asked(journal: Journal) -> None:
    assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    journal.set_sync("normal")
    assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    with pytest.raises(JournalError, match="not one of full, normal"):
        journal.set_sync("off")

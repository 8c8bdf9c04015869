"""`dr run log RUN --follow`: the run's journal as it grows, until the run ends.

It reads the journal (another process writes it) from the last record it printed, one
indexed query a poll; an attempt's output is printed when the attempt's record says it
ended. It stops when the run's last ``run`` record is final; a run that waits for a person
or was paused keeps being followed, as `tail -f` keeps a file open, until Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from dr.cli.common import STATE, console
from dr.cli.runtimes import RUN_FINAL, shown
from engine.journal import Journal, Record
from engine.redact import Redactor

POLL_SECONDS = 0.5
EXIT_OF = {"succeeded": 0, "failed": 7, "aborted": 7}


def follow_run(journal: Journal, ref: str, step: str | None, as_json: bool) -> int:
    """Print records after the last one printed until the run ends; its exit code (0, 7)."""
    info = journal.run(ref)
    seen, redactor = 0, Redactor()
    if info.options.get("dry_run") and not as_json:
        console.print(f"DRY RUN — nothing was sent: run {info.id} records commands only")
    try:
        while True:
            for rec in journal.records(info.id, after=seen):
                seen = rec.n
                if step is None or rec.step_id in (None, step):
                    _print(journal, rec, redactor, as_json)
                if rec.kind == "run" and rec.body.get("state") in RUN_FINAL:
                    return EXIT_OF.get(str(rec.body["state"]), 7)
            time.sleep(POLL_SECONDS)  # the journal is written by another process: poll it
    except KeyboardInterrupt:
        console.print(f"stopped following run {info.id}; it goes on", highlight=False)
        return 130


def _line(rec: Record) -> str:
    body = rec.body
    who = rec.step_id or "run"
    attempt = f" attempt {body['attempt']}" if body.get("attempt") else ""
    message = f" — {body['message']}" if body.get("message") else ""
    return f"{shown(rec.at)} {who}: {body.get('state', rec.kind)}{attempt}{message}"


def _print(journal: Journal, rec: Record, redactor: Redactor, as_json: bool) -> None:
    outputs = _ended_outputs(journal, rec, redactor)
    if as_json:  # one compact object a line (JSON Lines), flushed: a pipe reads it at once
        doc = {"n": rec.n, "at": rec.at, "kind": rec.kind, "step": rec.step_id,
               "body": rec.body, "outputs": outputs}  # fmt: skip
        STATE.json_emitted = True
        sys.stdout.write(json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    console.print(_line(rec), highlight=False, markup=False, soft_wrap=True)
    for out in outputs:
        console.print(f"  ── {out['purpose']} {out['stream']}", style="dim", highlight=False)
        for text in out["text"].rstrip("\n").splitlines():
            console.print(f"  {text}", highlight=False, markup=False, soft_wrap=True)


def _ended_outputs(journal: Journal, rec: Record, redactor: Redactor) -> list[dict[str, Any]]:
    """What the attempt that this record ends printed (nothing for other records)."""
    if rec.kind != "step" or rec.step_id is None or rec.body.get("state") in ("ready", "running"):
        return []
    attempt = rec.body.get("attempt")
    return [
        {"purpose": o.purpose, "stream": o.stream,
         "text": redactor.text(o.data.decode("utf-8", errors="replace"))}
        for o in journal.outputs(rec.run_id, rec.step_id)
        if o.attempt == attempt and o.data
    ]  # fmt: skip

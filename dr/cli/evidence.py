"""`dr evidence`: signed, tamper-evident records of runs, and their offline verification.

Exit codes: 0 success; 7 a record fails verification, a run is not finished, or there is
no signing key (E75xx, see docs/errors.md). docs/evidence.md shows an auditor's checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dr.cli.common import console, emit_json, print_table, suggest, workspace

app = typer.Typer(no_args_is_help=True)

_JSON = typer.Option(False, "--json", help="Machine-readable output.")
_PUBKEY = typer.Option(
    None, "--pubkey", help="The public key you trust (PEM or OpenSSH `ssh-ed25519` line)."
)


@app.command("keygen")
def keygen_command(
    key_dir: Path = typer.Option(
        None, "--key-dir", help="Where the key goes (default $DR_KEY_DIR, else ~/.config/dr/keys)."
    ),
) -> None:
    """Create the Ed25519 key that signs evidence, outside the workspace and repository.

    Refuses to replace an existing key. Give the public key it prints to your auditors.

    Example: dr evidence keygen
    """
    from dr.evidence.signing import keygen, public_key_path, public_openssh

    signer = keygen(key_dir)
    console.print(f"private key {signer.path} (mode 0600; keep it off the backup repository)")
    console.print(f"public key  {public_key_path(key_dir)}")
    console.print(f"keyid       {signer.keyid}", highlight=False)
    console.out(public_openssh(signer.public_key), highlight=False)


@app.command("record")
def record_command(
    run: str = typer.Argument(..., help="Run id (or a unique prefix) of a finished run."),
    corrective: list[str] = typer.Option(
        None, "--corrective", help="A corrective action to record (repeatable; free text)."
    ),
) -> None:
    """Sign the record of a finished run and append it to the evidence log.

    `dr run start` / `resume` do this when a run ends; run it by hand after `dr evidence
    keygen`, or to add corrective actions (a new record that supersedes the last).

    Example: dr evidence record 3f2a9c01
    """
    from dr.evidence.make import make_record
    from dr.evidence.signing import FileSigner
    from engine.journal import Journal

    signer = FileSigner.load()
    ws = workspace()
    with Journal.open(ws.journal_path) as journal:
        made = make_record(ws, journal, run, signer, corrective or [])
    verb = "signed and logged" if made.created else "already recorded (journal unchanged)"
    console.print(f"record {made.entry['record']} {verb}: {made.entry['verdict']}")
    console.print(f"  {made.directory}", highlight=False)


@app.command("show")
def show_command(
    run: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    seq: int = typer.Option(None, "--seq", help="A given record of the run (default: latest)."),
    as_json: bool = _JSON,
) -> None:
    """Show a run's evidence record: verdict, RTO / RPO, steps, approvals, deviations.

    Example: dr evidence show 3f2a9c01
    """
    from dr.evidence.make import evidence_log, find_entry, read_statement

    log = evidence_log(workspace())
    entry = find_entry(log, run, seq)
    statement = read_statement(log.record_dir(entry["record"]))
    if as_json:
        emit_json({"entry": entry, "statement": statement})
        return
    _print_record(entry, statement["predicate"])


@app.command("export")
def export_command(
    run: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    out: Path = typer.Option(..., "--output", "-o", help="Directory to write (created)."),
    pubkey: Path = _PUBKEY,
    seq: int = typer.Option(None, "--seq", help="A given record of the run (default: latest)."),
) -> None:
    """Write what an auditor needs: envelope, SSH signature, subjects, public key (PEM and
    OpenSSH), allowed_signers, and the log proof (entries to the head, latest checkpoint).

    Example: dr evidence export 3f2a9c01 -o evidence/
    """
    from dr.evidence.make import export

    path = export(workspace(), run, out, pubkey, seq)
    console.print(
        f"exported to {path} — check it with: {suggest('dr', 'evidence', 'verify', path)}",
        highlight=False,
    )


@app.command("verify")
def verify_command(
    path: Path = typer.Argument(..., help="An export directory, or <workspace>/evidence."),
    pubkey: Path = _PUBKEY,
    as_json: bool = _JSON,
) -> None:
    """Check signatures, digests, chains and checkpoints offline; name each failure.

    Example: dr evidence verify evidence/ --pubkey dr-evidence.pub
    """
    from dr.errors import EvidenceInvalid
    from dr.evidence.verify import verify_path

    report = verify_path(path, pubkey)
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_report(report)
    if not report.ok:
        failed = sorted({c.category for c in report.checks if not c.ok})
        raise EvidenceInvalid(f"{path}: verification failed ({', '.join(failed)})")


def _print_report(report: Any) -> None:
    console.print(f"key: {report.key}", highlight=False, markup=False)
    for check in report.checks:
        mark = "[green]ok[/]    " if check.ok else "[red]FAILED[/]"
        console.print(f"{mark} {check.category:<10} ", end="")
        console.print(check.what, highlight=False, markup=False, soft_wrap=True)
    if report.ok:
        console.print(f"[green]verified[/]: {len(report.checks)} checks passed")


def _print_record(entry: dict[str, Any], pred: dict[str, Any]) -> None:
    res, ident = pred["results"], pred["identity"]
    dry = res["verdict"] == "DRY_RUN"
    if dry:  # a record of commands written down, not of a restore
        console.print("[bold yellow]DRY RUN — nothing was sent[/]", highlight=False)
    outcome = "recorded its commands, restored nothing" if dry else res["outcome"]
    console.print(
        f"record {entry['record']} ({pred['kind']}): [bold]{res['verdict']}[/] — run "
        f"{ident['run_id']} {outcome}; {ident['scenario']}: {ident['target']['what']}",
        highlight=False,
    )
    console.print(
        f"RTO {_sec(res['measured_rto_seconds'])} (target {_sec(res['rto_target_seconds'])}); "
        f"RPO {_sec(res['achieved_rpo_seconds'])} (target {_sec(res['rpo_target_seconds'])})"
    )
    console.print(f"plan {ident['plan_digest']}  estate {ident['estate_digest']}", style="dim")
    _print_steps(pred["steps"], dry)
    for dev in pred["deviations"]:
        console.print(f"deviation: {dev['kind']} {dev['step'] or ''} {dev['detail']}", markup=False)
    for action in pred["corrective_actions"]:
        console.print(f"corrective action: {action}", markup=False)


def _print_steps(steps: list[dict[str, Any]], dry: bool = False) -> None:
    from rich.table import Table

    table = Table("step", "state", "attempts", "exit", "started", "finished", "approved by")
    for s in steps:
        approvers = ", ".join(a["by"] for a in s["approvals"])
        exit_code = "" if s["exit_code"] is None else str(s["exit_code"])
        times = [(s["started_at"] or "")[:19], (s["finished_at"] or "")[:19]]
        state = "recorded" if dry and s["state"] == "succeeded" else s["state"]
        table.add_row(s["id"], state, str(s["attempts"]), exit_code, *times, approvers)
    print_table(table)


def _sec(value: float | None) -> str:
    return "—" if value is None else f"{value:g} s"

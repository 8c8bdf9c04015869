"""What `dr run start` / `dr run resume` call when a run stops: record it if it finished."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

from dr.errors import DrError, EvidenceKeyMissing
from dr.evidence.record import TERMINAL
from dr.suggest import suggest
from engine.errors import EngineError

if TYPE_CHECKING:
    from dr.workspace import Workspace
    from engine.journal import Journal, RunInfo


def after_run(ws: Workspace, journal: Journal, info: RunInfo, state: str, out: Console) -> None:
    """Sign and log the run's record; a missing key or any evidence error is one line on
    ``out`` and never changes how the run ended. Dry runs restore nothing: not recorded."""
    if state not in TERMINAL or info.options.get("dry_run"):
        return
    from dr.evidence.make import make_record
    from dr.evidence.signing import FileSigner

    try:
        made = make_record(ws, journal, info.id, FileSigner.load())
    except EvidenceKeyMissing:
        out.print(
            f"evidence: no signing key — `dr evidence keygen`, then "
            f"`{suggest('dr', 'evidence', 'record', info.id)}`",
            highlight=False,
        )
        return
    except (DrError, EngineError) as exc:
        out.print(f"evidence: not recorded: {exc.lines()[0]}", highlight=False, markup=False)
        return
    out.print(f"evidence: record {made.entry['record']} signed and logged", highlight=False)

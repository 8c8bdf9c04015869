"""A property: for any history the lab's workload makes and any target after the first full,
the plan dr makes from its catalog runs to the end and the result equals the truth."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import ROOT, LabWorkspace, _env, iso


def _lab(root: Path, seed: int) -> LabWorkspace:
    lab = LabWorkspace(root, _env(root))
    out = subprocess.run(
        [sys.executable, "-m", "dr", "lab", "up", "--days", "1", "--seed", str(seed),
         "--inventory", str(ROOT / "examples" / "estate.yaml")],
        capture_output=True, text=True, env=lab.env, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return lab


@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,  # the same four histories in every run: a failure can be replayed
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(min_value=1, max_value=10**6),
    minutes=st.integers(min_value=0, max_value=23 * 60),
    fault=st.sampled_from(["crash-store", "corrupt-page"]),
    database=st.sampled_from(["DB01", "DB02"]),
)
def test_any_target_restores_to_exactly_the_truth_at_its_point(
    seed: int, minutes: int, fault: str, database: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lab_ws = _lab(Path(tmp), seed)
        start = datetime.fromisoformat(lab_ws.lab().state["start"])
        target = start + timedelta(minutes=minutes)
        lab_ws.dr("lab", "break", fault, "--db", database)
        plan = lab_ws.plan("database", "--db", database, "--at", iso(target))
        point = datetime.fromisoformat(plan["recoverable_point"])
        assert start <= point <= target

        out = lab_ws.run_plan()

        assert out.returncode == 0, out.stdout + out.stderr
        verdict = json.loads(
            lab_ws.dr("lab", "verify", "--db", database, "--at", point.isoformat(), "--json").stdout
        )
        assert verdict["equal"], verdict

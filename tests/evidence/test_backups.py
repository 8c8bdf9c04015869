"""The backups under test come from the plan's facts and the catalog, with their digests."""

from __future__ import annotations

from pathlib import Path

from dr.evidence.make import backup_ids, catalog_backups
from dr.workspace import Workspace
from engine.plan import load_plan
from tests.evidence.conftest import ROOT, make_env


def test_a_real_plans_backups_carry_the_catalogs_sha256(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    env.dr("init", "--inventory", str(ROOT / "examples" / "estate.yaml"))
    env.dr("catalog", "import", str(ROOT / "examples" / "history.json"))
    out = tmp_path / "plan.json"
    env.dr("plan", "database", "--db", "DB01", "--at", "2024-05-15T11:40Z", "-o", str(out))
    plan = load_plan(out)
    ids = list(dict.fromkeys(backup_ids(plan.facts)))
    assert ids and all(i.startswith(("run-", "artifact-")) for i in ids)
    backups = catalog_backups(Workspace(env.workspace), plan)
    assert [b["id"] for b in backups] == ids
    artifacts = [a for b in backups for a in b["artifacts"]]
    assert artifacts and all(len(a["sha256"] or "") == 64 for a in artifacts)
    assert {b["type"] for b in backups} <= {"full", "copy", "incremental", "differential"}


def test_without_a_catalog_the_record_says_so(tmp_path: Path) -> None:
    from engine.plan import Plan, Step, Target

    plan = Plan(
        scenario="database", target=Target(what="t"), created_from="0" * 64,
        facts={"chains": [{"base": "run-7", "versions": ["run-7", "run-9"]}]},
        steps=[Step(id="a", kind="k", host="h")],
    )  # fmt: skip
    found = catalog_backups(Workspace(tmp_path / "none"), plan)
    assert found == [
        {"id": "run-7", "catalog": "no catalog in this workspace"},
        {"id": "run-9", "catalog": "no catalog in this workspace"},
    ]

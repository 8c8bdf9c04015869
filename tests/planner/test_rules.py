"""Rules the planner keeps across scenarios: mail-level items stay in their database (A11),
recovery-forest names (B8), and destructive steps taken from the step library (E7)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from dr.errors import NameMismatch, ParameterError, WrongDatabase
from dr.model.inventory import RecoveryForest
from dr.planner import (
    plan_alternate,
    plan_database,
    plan_drill,
    plan_forest,
    plan_mailbox,
    plan_message,
    plan_offline,
    plan_server,
    plan_site,
    rto,
)
from dr.planner.facts import MemoryFacts
from engine.plan import Plan
from engine.runbook import Library
from tests.planner.histories import (
    at,
    estate,
    estate_facts,
    facts,
    host_artifact,
    legacy_sim,
    modern_sim,
    steps,
)


def _with_items(**item: object) -> MemoryFacts:
    sim = modern_sim()
    sim.backup("full")
    sim.logs()
    sim.backup("incremental")
    host = str(item.pop("host", "EX2016"))
    return facts(sim, artifacts=[host_artifact("mailbox-items", host, 0.5, **item)])


# --------------------------------------------------------------------------- A11


def test_mail_level_items_from_another_database_are_refused_naming_both() -> None:
    provider = _with_items(mailbox="abakker", database="EX2016/DB02/DB02", item_count=10)
    with pytest.raises(WrongDatabase) as caught:
        plan_message(provider, "abakker", at(1), at(24 * 30))
    error = caught.value
    assert "EX2016/DB02/DB02" in error.message and "EX2016/DB01/DB01" in error.message
    assert error.details["backup_database"] == "EX2016/DB02/DB02"
    assert error.details["current_database"] == "EX2016/DB01/DB01"
    assert error.exit_code == 3


def test_mail_level_items_made_on_another_server_are_refused() -> None:
    # the mailbox moved from EX2003 to EX2016 since: its old items name no database, but
    # they were made on EX2003, so they came from a database there
    provider = _with_items(host="EX2003", mailbox="abakker", item_count=10)
    with pytest.raises(WrongDatabase, match=r"a database on EX2003.*now in EX2016/DB01/DB01"):
        plan_message(provider, "abakker", at(1), at(24 * 30))


def test_mail_level_items_of_the_same_database_restore() -> None:
    provider = _with_items(mailbox="abakker", database="DB01", item_count=10)
    plan = plan_message(provider, "abakker", at(1), at(24 * 30))
    assert "restore-mail-level" in [s.kind for s in plan.steps]


# --------------------------------------------------------------------------- B8

SALES = "Second Storage Group/Sales Store"


def _forests(*forests: object) -> MemoryFacts:
    sims = []
    for sg, prefix in (("First Storage Group", "E00"), ("Second Storage Group", "E01")):
        sim = legacy_sim(sg, prefix)
        sim.backup("full")
        sims.append(sim)
    f = facts(*sims)
    inv = f.inv.model_copy(update={"recovery_forests": list(forests)})
    return replace(f, inv=inv)


def _good() -> RecoveryForest:
    return estate().recovery_forests[0]


def _bad(name: str = "broken.lab") -> RecoveryForest:
    """Every name and the version wrong at once."""
    good = _good()
    groups = [
        g.model_copy(update={"name": "Lab Group", "legacy_exchange_dn": "/o=Lab/ou=Lab Group"})
        for g in good.administrative_groups
    ]
    rx = good.servers[0]
    sgs = [
        sg.model_copy(
            update={
                "name": f"Lab {sg.name}",
                "databases": [d.model_copy(update={"name": f"Lab {d.name}"}) for d in sg.databases],
            }
        )
        for sg in rx.storage_groups
    ]
    server = rx.model_copy(
        update={
            "exchange_version": 2007,
            "administrative_group": "Lab Group",
            "storage_groups": sgs,
        }
    )
    return good.model_copy(
        update={
            "name": name,
            "organization": "Fabrikam",
            "administrative_groups": groups,
            "servers": [server],
        }
    )


def test_every_recovery_forest_mismatch_is_named_at_once() -> None:
    with pytest.raises(NameMismatch) as caught:
        plan_alternate(_forests(_bad()), SALES, "broken.lab")
    fields = [m["field"] for m in caught.value.details["mismatches"]]
    assert fields == [
        "organization",
        "administrative group",
        "administrative group legacyExchangeDN",
        "storage group",
        "database",
        "Exchange version",
    ]
    for word in ("Fabrikam", "Second Storage Group", "Sales Store", "2007"):
        assert word in caught.value.message


def test_a_bad_recovery_forest_does_not_block_restores_that_do_not_use_it() -> None:
    provider = _forests(_bad(), _good())
    plan = plan_alternate(provider, SALES, None)
    assert plan.facts["forest"] == "recovery.contoso.lab"
    assert plan.facts["recovery_server"] == "RX2003"
    assert plan_database(provider, [SALES], None).steps  # never looks at recovery forests
    # named, the bad one is still refused, and alone it is refused naming its mismatches
    with pytest.raises(NameMismatch):
        plan_alternate(provider, SALES, "broken.lab")
    with pytest.raises(NameMismatch) as caught:
        plan_alternate(_forests(_bad("a.lab"), _bad("b.lab")), SALES, None)
    assert [c["forest"] for c in caught.value.details["candidates"]] == ["a.lab", "b.lab"]


def test_a_bad_server_in_a_recovery_forest_is_passed_over() -> None:
    good = _good()
    wrong = good.servers[0].model_copy(update={"name": "RX2003B", "storage_groups": []})
    forest = good.model_copy(update={"servers": [wrong, *good.servers]})
    plan = plan_alternate(_forests(forest), SALES, None)
    assert plan.facts["recovery_server"] == "RX2003"


# --------------------------------------------------------------------------- E7

EX2003_MAIL = "First Storage Group/Mailbox Store (EX2003)"


def _estate() -> MemoryFacts:
    return estate_facts(offline=True)


SCENARIOS: dict[str, Callable[[MemoryFacts], Plan]] = {
    "database 2003 point in time": lambda f: plan_database(f, [EX2003_MAIL], at(1.2)),
    "database both families": lambda f: plan_database(f, [EX2003_MAIL, "DB01"]),
    "offline": lambda f: plan_offline(f, [EX2003_MAIL]),
    "message in retention": lambda f: plan_message(f, "jsmith", at(1), at(30)),
    "message mail level": lambda f: plan_message(f, "administrator", at(1), at(24 * 30)),
    "message recovery database": lambda f: plan_message(f, "tvisser", at(1), at(24 * 30)),
    "mailbox reconnect": lambda f: plan_mailbox(f, "jsmith", at(48), deleted_at=at(1)),
    "mailbox recovery forest": lambda f: plan_mailbox(f, "jsmith", at(24 * 90), at(1)),
    "mailbox recovery database": lambda f: plan_mailbox(f, "finance", at(24 * 90), at(1)),
    "server 2003": lambda f: plan_server(f, "EX2003"),
    "server 2016": lambda f: plan_server(f, "EX2016"),
    "server KMS": lambda f: plan_server(f, "KMS1"),
    "forest": lambda f: plan_forest(f, "corp.contoso.com"),
    "forest authoritative": lambda f: plan_forest(f, "CORP", ["CN=x,DC=corp,DC=contoso,DC=com"]),
    "alternate": lambda f: plan_alternate(f, SALES, None),
    "drill": lambda f: plan_drill(f, "DB02"),
    "site": lambda f: plan_site(f),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_planner_takes_destructive_from_the_step_library(scenario: str) -> None:
    """For every step kind a scenario emits, the planner's view of "destructive" is the step
    library's flag (E7), and every destructive step waits for a second person's approval."""
    library = Library.load()
    provider = _estate()
    plan = SCENARIOS[scenario](provider)
    for step in plan.steps:
        flag = library.kind(step.kind).destructive  # every emitted kind is in the library
        assert rto.is_destructive(provider, step.kind) is flag, step.kind
        assert step.destructive is flag, step.id
        if flag:
            assert any(plan.step(n).kind == "approve" for n in step.needs), step.id


def test_the_library_marks_the_destructive_kinds_the_planner_knows() -> None:
    library = Library.load()
    marked = {k for k in library.kinds() if library.kind(k).destructive}
    assert {"soft-recovery-accept-loss", "repair-database"} <= marked
    assert steps().destructive == marked
    for kind in marked:
        assert rto.is_destructive(_estate(), kind)


def test_a_planner_without_the_library_facts_refuses_to_guess() -> None:
    bare = replace(_estate(), steps=None)
    with pytest.raises(ParameterError, match="no step-library facts"):
        rto.is_destructive(bare, "repair-database")

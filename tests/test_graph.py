"""The artifact graph: needs edges and the gaps found ahead of a restore."""

from __future__ import annotations

from dr.graph import build_graph, gaps, subgraph, to_dot, to_json, to_mermaid
from dr.planner.facts import MemoryFacts
from tests.planner.histories import estate_artifacts, facts, legacy_sim


def _history() -> MemoryFacts:
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.logs()
    sim.backup("incremental", vid="I1")
    sim.logs()
    sim.backup("incremental", vid="I2")
    sim.logs()
    sim.backup("differential", vid="D1")
    sim.logs()
    sim.backup("incremental", vid="I3")
    sim.drop("I2")
    return facts(sim, artifacts=estate_artifacts())


def test_needs_edges_follow_the_exchange_rules() -> None:
    g = build_graph(_history())
    assert g.has_edge("backup:I1", "backup:F")
    assert g.has_edge("backup:D1", "backup:F")
    assert g.has_edge("backup:I3", "backup:I1")  # I2 is gone: the chain now links over it
    assert g.has_edge("live:EX2003/First Storage Group", "backup:I3")
    assert g.has_edge("server:EX2003", "directory:corp.contoso.com")
    state = [n for n in g.successors("directory:corp.contoso.com")]
    assert state and g.nodes[state[0]]["kind"] == "system-state"
    assert g.has_edge("artifact:iis-metabase-EX2003-0.5", "artifact:system-state-EX2003-0.5")
    kms = "artifact:kms-database-KMS1-0.5"
    assert g.has_edge(kms, "artifact:ca-certificates-DC1-0.5")
    assert g.has_edge(kms, "secret:kms-startup-password@KMS1")


def test_gaps_name_the_missing_generations_and_secrets() -> None:
    f = _history()
    inv = f.inv.model_copy(
        update={"secrets": [s for s in f.inv.secrets if s.kind != "dsrm-password"]}
    )
    found = gaps(MemoryFacts(inv, f.backups, f.live, f.artifacts))
    logs = [g for g in found if g.kind == "log-gap"]
    assert [(g.details["first_missing"], g.details["last_missing"]) for g in logs] == [(21, 30)]
    secrets = sorted(g.details["host"] for g in found if g.kind == "missing-secret")
    assert secrets == ["DC1", "DC2016"]


def test_expired_full_leaves_its_incrementals_without_a_base() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.logs()
    sim.backup("incremental", vid="I1")
    sim.expire("F")
    found = gaps(facts(sim, artifacts=estate_artifacts()))
    assert [g.subject for g in found if g.kind == "missing-base"] == ["backup:I1"]


def test_show_renders_a_target_and_what_it_needs() -> None:
    g = build_graph(_history())
    sub = subgraph(g, "server:EX2003")
    assert "directory:corp.contoso.com" in sub and "backup:F" not in sub
    assert '"server:EX2003" -> "directory:corp.contoso.com"' in to_dot(sub)
    assert to_mermaid(sub).startswith("graph LR")
    assert {n["id"] for n in to_json(sub)["nodes"]} == set(sub)

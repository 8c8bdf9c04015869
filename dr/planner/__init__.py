"""The restore planner: (inventory, catalog facts, scenario, target) → Plan, or a refusal.

Pure: it reads facts through :class:`dr.planner.facts.FactsProvider` and does no other I/O.
One module per scenario family; each entry point returns a sealed :class:`engine.plan.Plan`
or raises a :class:`dr.errors.NotRecoverable` whose ``details`` say what a responder can do.
"""

from __future__ import annotations

from dr.planner.alternate import plan_alternate, plan_drill
from dr.planner.database import plan_database, plan_offline
from dr.planner.facts import FactsProvider, MemoryFacts, PlanReporter
from dr.planner.forest import plan_forest
from dr.planner.mailbox import plan_mailbox, plan_message
from dr.planner.server import plan_server
from dr.planner.site import plan_site

__all__ = [
    "FactsProvider",
    "MemoryFacts",
    "PlanReporter",
    "plan_alternate",
    "plan_database",
    "plan_drill",
    "plan_forest",
    "plan_mailbox",
    "plan_message",
    "plan_offline",
    "plan_server",
    "plan_site",
]

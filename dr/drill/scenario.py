"""Scenario drills (C2): a whole failure rehearsed in the isolated lab, timed, with who did what.

A database drill (``dr.drill.run``) proves the *backups*: a copy restored into the recovery
forest, production untouched. A scenario drill proves the *procedure and the people*: it
breaks what it drills — so it runs only in the built-in lab (``dr lab up``), never on an
estate dr cannot rebuild from scratch — then plans the incident plan a responder would get
at 3 a.m. from the catalog, runs it with the engine (the same runner, journal, transports
and approvals as ``dr run start``; the steps that need a person are asked about at the
terminal), and proves the result equal to the lab's ground truth. The record goes into the
drill history as a scenario drill and the run's evidence is signed, with every person's
acknowledgement in it.

- ``store-failure``: a database is damaged (``corrupt-page``: the store stops with the file
  dirty and a page broken). The responder lists the logs left on the server (``eseutil
  /ml``, what ``dr plan database --server-logs`` reads) and restores to the point of failure
  (B3): the database must equal the truth at the moment it failed — nothing lost.
- ``server-loss``: the server and its disks are gone (``lose-server``). The rebuild plan
  (B6: directory checks, the computer account reset, Windows, the join, ``Setup
  /m:RecoverServer``, every database restored) needs people for the hardware, the account,
  Windows and the certificates; each database must equal the truth at its recoverable point.
- ``directory-loss``: the directory database of the domain controller that the forest plan
  restores is unusable (``lose-dc``). The plan (B7) restarts it into Directory Services
  Restore Mode, where people at its console (signed in as the DSRM administrator) restore
  its system state by wbadmin's own version identifier and restart it; its surviving
  partners replicate what changed since the backup; then every Exchange server of the
  domain is restarted and its stores checked. The directory must equal the truth (what the
  surviving partners hold) and the DC must be back in normal mode. The lab restores a DC
  whose partners survive; a forest with no surviving DC is planned (SYSVOL made primary)
  but not rehearsed there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from dr.drill.history import DrillCheck
from dr.drill.run import (
    DrillOutcome,
    _execute,
    _finish,
    _lab_of,
    _Record,
    _served,
    drill_id_for,
    missing,
    now_utc,
)
from dr.errors import DrError, NotFoundError, ScenarioNeedsLab
from engine.errors import EngineError

if TYPE_CHECKING:
    from dr.lab.estate import Lab
    from dr.model.inventory import Inventory, Server
    from dr.workspace import Workspace
    from engine.plan import Plan
    from engine.runbook import Library
    from engine.runner import Operator, Reporter

#: the scenarios a drill can run to a verdict today
BUILT = ("store-failure", "server-loss", "directory-loss")


def run_scenario_drill(
    ws: Workspace,
    name: str,
    *,
    by: str,
    target: str | None = None,
    reporter: Reporter | None = None,
    operator: Operator | None = None,
    say: Callable[[str], None] = lambda _line: None,
) -> DrillOutcome:
    """Break, plan, run, prove and record the scenario ``name``; see the module docstring."""
    from dr.model.load import workspace_inventory
    from engine.runbook import Library

    lab = _lab_of(ws)
    if lab is None:
        raise ScenarioNeedsLab(
            f"the {name} drill breaks what it drills: it runs only in the built-in lab",
            hint="rehearse it on a lab of this estate: dr lab up --inventory FILE, then "
            "dr drill run --scenario NAME in that workspace; restores of this estate's own "
            "backups are proved by database drills (dr drill run DB)",
        )
    if name not in BUILT:
        raise NotFoundError(
            f"no {name} scenario drill can run yet: the lab does not restore a domain controller",
            hint=f"scenario drills that run: {', '.join(BUILT)}",
        )
    inv = workspace_inventory(ws)
    library = Library.load()
    chosen = _target(inv, name, target)
    started = now_utc()
    base = _Record(drill_id_for(f"{name}-{chosen}", started), chosen, started, "")
    base.scenario = name
    with _served(lab):  # the lab's endpoints, and the credentials that sign in to them
        return _drill(ws, inv, library, lab, base, name, chosen, by, reporter, operator, say)


def _drill(ws: Workspace, inv: Inventory, library: Library, lab: Lab, base: _Record, name: str,
           chosen: str, by: str, reporter: Reporter | None, operator: Operator | None,
           say: Callable[[str], None]) -> DrillOutcome:  # fmt: skip
    from dr.drill.drift import library_digest

    try:  # what the run needs is checked before anything is broken
        rehearsal = _plan(ws, inv, library, lab, name, chosen, listed=False)
        why = missing(rehearsal, library)
    except (DrError, EngineError) as exc:
        return _finish(ws, base.failed(f"could not be planned: {exc.lines()[0]}"), None, say)
    if why:
        return _finish(ws, base.failed(f"not started, nothing broken: {why}"[:1000]), None, say)
    try:
        fault = _break(lab, name, _broken(name, chosen, rehearsal))
        say(f"drill: {fault}")
        truth = _directory(lab) if name == "directory-loss" else None
        plan = _plan(ws, inv, library, lab, name, chosen)
    except (DrError, EngineError) as exc:
        return _finish(ws, base.failed(f"could not be planned: {exc.lines()[0]}"), None, say)
    folder = ws.root / "drills" / base.drill_id
    folder.mkdir(parents=True, exist_ok=True)
    plan_path = folder / "plan.json"
    plan.save(plan_path)
    base.target = f"{plan.target.what}, in place on the lab"
    base.plan = plan
    base.library = library_digest({s.kind for s in plan.steps}, library)
    if name == "directory-loss":
        dc = _broken(name, chosen, plan)

        def judge(p: Plan) -> list[DrillCheck]:
            return _directory_truth(lab, dc, truth or {})
    else:
        keys = _restored(inv, name, chosen)

        def judge(p: Plan) -> list[DrillCheck]:
            return _truth(lab, p, keys)

    return _execute(ws, base, plan_path, library, by, (), lab, False, reporter, operator, say,
                    judge=judge)  # fmt: skip


# --------------------------------------------------------------------------- the parts


def _exchange_servers(inv: Inventory) -> list[Server]:
    found = [s for s in inv.servers if s.exchange_version is not None and s.storage_groups]
    return sorted(found, key=lambda s: (s.exchange_version or 0) < 2007)  # 2007+ first


def _target(inv: Inventory, name: str, given: str | None) -> str:
    """The database (store-failure) or server (server-loss) the drill breaks: the one named,
    the policy's, else the first Exchange 2007+ one of the inventory."""
    from dr.model.refs import resolve_database

    policy = next((s for s in inv.drills.scenarios if s.name == name), None)
    given = given or (policy.target if policy is not None else None)
    if name == "store-failure":
        if given:
            return resolve_database(inv, given).key
        server = next(iter(_exchange_servers(inv)), None)
        if server is None:
            raise NotFoundError("the inventory has no Exchange database to fail")
        sg = server.storage_groups[0]
        return f"{server.name}/{sg.name}/{sg.databases[0].name}"
    if name == "directory-loss":  # the domain; the forest plan chooses its DC
        from dr.planner.forest import find_domain

        if given:
            return find_domain(inv, given).name
        domains = [d for f in inv.forests for d in f.domains]
        if not domains:
            raise NotFoundError("the inventory has no domain to lose")
        return domains[0].name
    if given:
        try:
            return inv.server(given).name
        except KeyError:
            raise NotFoundError(
                f"no server {given!r} in the inventory", hint="name it as listed under servers:"
            ) from None
    server = next(iter(_exchange_servers(inv)), None)
    if server is None:
        raise NotFoundError("the inventory has no Exchange server to lose")
    return server.name


def _broken(name: str, target: str, plan: Plan) -> str:
    """What the fault hits: the target, or (directory-loss) the DC the plan restores."""
    if name != "directory-loss":
        return target
    found = [s.host for s in plan.steps if s.kind == "restore-system-state"]
    if not found:
        raise NotFoundError(f"the plan for {target} restores no domain controller")
    return found[0]


def _break(lab: Lab, name: str, target: str) -> str:
    from dr.lab import faults

    if name == "store-failure":
        return faults.apply(lab, "corrupt-page", target)
    if name == "directory-loss":
        return faults.lose_dc(lab, target)
    return faults.apply_host(lab, "lose-server", target)


def _directory(lab: Lab) -> dict[str, object]:
    """The directory's objects as the running domain controllers hold them."""
    return dict(lab.directory_store.snapshot()["objects"])


def _directory_truth(lab: Lab, dc: str, truth: dict[str, object]) -> list[DrillCheck]:
    """After the restore: the directory equals what the surviving partners held when the DC
    was lost (the restored DC took their changes), and the DC runs normally again."""
    now = _directory(lab)
    differ = sorted(k for k in set(now) | set(truth) if now.get(k) != truth.get(k))
    state = lab.dc(dc).load()
    return [
        DrillCheck(
            name="the directory equal to the lab's ground truth", passed=not differ,
            detail=f"{len(now)} objects; {len(differ)} differ"
            + (f": {', '.join(differ[:5])}" if differ else ""),
        ),
        DrillCheck(
            name=f"{dc} back in normal mode with its directory",
            passed=state.mode == "normal" and state.ntds == "ok",
            detail=f"mode {state.mode}, directory database {state.ntds}",
        ),
    ]  # fmt: skip


def _plan(ws: Workspace, inv: Inventory, library: Library, lab: Lab, name: str,
          target: str, *, listed: bool = True) -> Plan:  # fmt: skip
    """The incident plan, from the catalog, as a responder makes it after the failure
    (``listed``: with the logs then left on the server)."""
    from dr.catalog import Catalog
    from dr.planner import plan_database, plan_forest, plan_server
    from dr.planner.catalog_facts import CatalogFacts
    from dr.planner.facts import StepFacts
    from dr.planner.forest import find_domain

    steps = StepFacts.of_library(library)
    live = _server_logs(inv, lab, target) if name == "store-failure" and listed else []
    with Catalog.open(ws.catalog_path) as catalog:
        provider = CatalogFacts(catalog, inv, live, steps)
        if name == "store-failure":
            return plan_database(provider, [target])
        if name == "directory-loss":
            domain = find_domain(inv, target)
            return plan_forest(provider, domain.name,
                               partners_survive=len(domain.domain_controllers) > 1)  # fmt: skip
        return plan_server(provider, target)


def _server_logs(inv: Inventory, lab: Lab, key: str) -> list[object]:
    """What the responder lists first: the logs left in the storage group's log folder
    (``eseutil /ml``, run there), so the restore can replay to the moment of the failure.
    Exchange 2000/2003 hosts get no listing (NTBackup restores replay what they restore)."""
    from dr.model.refs import resolve_database
    from dr.planner.live import live_logs

    ref = resolve_database(inv, key)
    if (ref.server.exchange_version or 0) < 2007:
        return []
    sg = ref.storage_group
    script = f"Set-Location -LiteralPath '{sg.log_path}'; eseutil /ml {sg.log_prefix}"
    code, text = _console(lab, ref.server.name, script)
    if code != 0:
        raise DrError(f"{ref.server.name}: eseutil /ml {sg.log_prefix} exited {code}",
                      hint=text.strip().splitlines()[-1] if text.strip() else "")  # fmt: skip
    source = f"eseutil /ml {sg.log_prefix} on {ref.server.name}"
    return [live_logs(inv, f"{ref.server.name}/{sg.name}", text, lab.now(), source)]


def _console(lab: Lab, host: str, script: str) -> tuple[int, str]:
    """A command typed at the lab host's console (as ``dr lab exec`` runs it)."""
    output = lab.host(host)(script, b"", "powershell")
    text = []
    try:
        while True:
            _stream, data = next(output)
            text.append(data.decode("utf-8", "replace"))
    except StopIteration as stop:
        return int(stop.value or 0), "".join(text)


def _restored(inv: Inventory, name: str, target: str) -> list[str]:
    """The databases the scenario's plan must bring back (SERVER/SG/DB)."""
    if name == "store-failure":
        return [target]
    server = inv.server(target)
    return [f"{server.name}/{sg.name}/{db.name}" for sg in server.storage_groups
            for db in sg.databases]  # fmt: skip


def _truth(lab: Lab, plan: Plan, keys: list[str]) -> list[DrillCheck]:
    """Each database of ``keys``, message by message, against the lab's ground truth at its
    chain's recoverable point (the point of failure, for a store failure with its logs)."""
    points = {str(c.get("stream", "")).lower(): c.get("recoverable_point")
              for c in plan.facts.get("chains") or []}  # fmt: skip
    found = []
    for key in keys:
        server, sg, db = key.split("/", 2)
        name = f"{db} equal to the lab's ground truth"
        point = points.get(f"{server}/{sg}".lower())
        if not point:
            found.append(DrillCheck(name=name, passed=False, detail="the plan restored no chain"))
            continue
        at = datetime.fromisoformat(str(point))
        try:
            verdict = lab.verify(db, at, host=server)
        except (DrError, OSError) as exc:
            found.append(DrillCheck(name=name, passed=False, detail=str(exc)))
            continue
        detail = (f"{verdict.found} of {verdict.expected} messages at {at.isoformat()}; "
                  f"{len(verdict.missing)} missing, {len(verdict.extra)} extra, "
                  f"{len(verdict.moved)} moved")  # fmt: skip
        found.append(DrillCheck(name=name, passed=verdict.equal, detail=detail))
    return found

"""What a plan's steps need before the first one runs, checked without sending anything.

`dr run start --check PLAN` reports it; `dr run start` refuses to begin while something is
missing (a dry run sends nothing and is not refused). Each check asks the code the steps
themselves use, so the check and the run cannot disagree:

* a transport for every host a command runs on: the host table `dr run` builds (`hosts:`
  in the workspace config.yaml, then the --hosts file; ``orchestrator`` and ``localhost``
  run locally), a winrm entry validated as the transport reads it, and its credential found
  in the environment or the keyring, or asked at a terminal (it is never printed);
* for each fetch step, where this machine sees the host's staging folder: the workspace's
  `staging:` map, through the same lookup `dr store fetch` makes;
* when a fetch step restores from dr's repository: the runs in the catalog, the repository
  recorded in the workspace, its config and its key file (the passphrase is a secret);
* every secret a step names: its environment variable is set (its value is never read out).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from dr.errors import DrError
from engine.errors import EngineError
from engine.executor import StepSpec
from engine.plan import Plan

LOCAL_HOSTS = ("orchestrator", "localhost")
FETCH_KIND = "fetch-artifacts"


@dataclass(frozen=True)
class Finding:
    """One thing a plan needs: found (``ok``) or not, for which steps, and what to do."""

    check: str  # transport | credential | staging | catalog | repository | secret
    subject: str
    ok: bool
    detail: str
    steps: tuple[str, ...] = ()
    hint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "steps": list(self.steps)}


@dataclass(frozen=True)
class Context:
    """Where the answers come from: the host table, the `staging:` map, the environment."""

    hosts: Mapping[str, Mapping[str, Any]]
    staging: Mapping[str, Any]
    environ: Mapping[str, str]
    interactive: bool


def context(hosts: Mapping[str, Mapping[str, Any]]) -> Context:
    """The context `dr run` itself would use, for this process."""
    from dr.cli.store_fetch import staging_map

    return Context(hosts, staging_map(), os.environ, sys.stdin is not None and sys.stdin.isatty())


def preflight(plan: Plan, specs: Mapping[str, StepSpec], ctx: Context) -> list[Finding]:
    """Every finding, in the order a responder fixes them: hosts, folders, store, secrets."""
    automated = {sid: s for sid, s in specs.items() if not s.manual and s.command is not None}
    fetches = [s for s in plan.steps if s.kind == FETCH_KIND and s.id in automated]
    return [
        *_hosts(automated, ctx),
        *(_staging(step.id, step.params, ctx) for step in fetches),
        *_store(fetches),
        *_secrets(automated.values(), ctx),
    ]


# -- hosts --------------------------------------------------------------------------------


def _hosts(specs: Mapping[str, StepSpec], ctx: Context) -> Iterator[Finding]:
    by_host: dict[str, list[str]] = {}
    for sid, spec in specs.items():
        by_host.setdefault(spec.host, []).append(sid)
    for host, steps in by_host.items():
        yield from _host(host, tuple(steps), ctx)


def _host(host: str, steps: tuple[str, ...], ctx: Context) -> Iterator[Finding]:
    spec = ctx.hosts.get(host) or ({"kind": "local"} if host in LOCAL_HOSTS else None)
    if spec is None:
        hint = "map it under `hosts:` in the workspace config.yaml, or pass --hosts FILE"
        yield Finding("transport", host, False, "no transport for this host", steps, hint)
        return
    kind = spec.get("kind")
    if kind != "winrm":
        known = kind in ("local", "dry-run")
        detail = f"{kind}" if known else f"unknown transport kind {kind!r}"
        yield Finding("transport", host, known, detail, steps, "" if known else "local or winrm")
        return
    yield from _winrm(host, {"host": host, **spec}, steps, ctx)


def _winrm(
    host: str, spec: dict[str, Any], steps: tuple[str, ...], ctx: Context
) -> Iterator[Finding]:
    from engine.transports.winrm import WinRMSettings

    rest = {k: v for k, v in spec.items() if k != "kind"}
    try:
        settings = WinRMSettings.from_spec(rest)
    except EngineError as exc:
        yield Finding("transport", host, False, exc.message, steps, exc.hint or "")
        return
    yield Finding("transport", host, True, f"winrm {settings.url}", steps)
    if settings.needs_password:
        yield _credential(host, settings.host, settings.username, steps, ctx)


def _credential(
    host: str, address: str, user: str | None, steps: tuple[str, ...], ctx: Context
) -> Finding:
    from engine.transports.credentials import resolve_credential

    try:
        found = resolve_credential(address, username=user, env=ctx.environ, interactive=False)
    except EngineError as exc:
        if ctx.interactive:
            return Finding("credential", host, True, "asked at this terminal", steps)
        return Finding("credential", host, False, exc.message, steps, exc.hint or "")
    return Finding("credential", host, True, str(found), steps)


# -- staging folders and the store -------------------------------------------------------


def _staging(step_id: str, params: Mapping[str, Any], ctx: Context) -> Finding:
    from dr.store.fetch import local_path

    dest, host = str(params.get("dest", "")), str(params.get("host") or "") or None
    subject = f"{host}: {dest}" if host else dest
    try:
        here = local_path(dest, ctx.staging, host)
    except DrError as exc:
        return Finding("staging", subject, False, exc.message, (step_id,), exc.hint or "")
    return Finding("staging", subject, True, f"is {here} here", (step_id,))


def _store(fetches: list[Any]) -> Iterator[Finding]:
    """The catalog knows the runs; if dr's repository holds any, it and its key are here."""
    from dr.catalog import Catalog
    from dr.cli.common import workspace
    from dr.store import fetch

    if not fetches:
        return
    stored: dict[str, tuple[str, ...]] = {}
    with Catalog.open(workspace().catalog_path) as catalog:
        for step in fetches:
            try:
                found = fetch.sources(catalog, [str(v) for v in step.params.get("versions", [])])
            except DrError as exc:
                yield Finding("catalog", step.id, False, exc.message, (step.id,), exc.hint or "")
                continue
            for source in found:
                if source.repo_id:
                    stored[source.repo_id] = (*stored.get(source.repo_id, ()), step.id)
    for repo_id, steps in stored.items():
        yield _repository(repo_id, tuple(dict.fromkeys(steps)))


def _repository(repo_id: str, steps: tuple[str, ...]) -> Finding:
    from dr.cli.store import repo_path
    from dr.store.repository import locate_key

    try:
        root = repo_path(None)
        config, key, _ = locate_key(root)
    except DrError as exc:
        return Finding("repository", repo_id, False, exc.message, steps, exc.hint or "")
    if config["id"] != repo_id:
        detail = f"the backups are in repository {repo_id}; the workspace's is {config['id']}"
        hint = "record the right one with `dr store init` or in config.yaml `repository:`"
        return Finding("repository", repo_id, False, detail, steps, hint)
    return Finding("repository", repo_id, True, f"{root}, key {key}", steps)


# -- secrets ------------------------------------------------------------------------------


def _secrets(specs: Iterable[StepSpec], ctx: Context) -> Iterator[Finding]:
    needed: dict[tuple[str, str], list[str]] = {}
    for spec in specs:
        for secret in spec.secrets:
            needed.setdefault((secret.name, secret.source), []).append(spec.id)
    for (name, var), steps in needed.items():
        if ctx.environ.get(var):
            yield Finding("secret", name, True, f"${var} is set", tuple(steps))
        else:
            hint = f"set {var} in the environment dr runs in (never in a file in a repository)"
            yield Finding("secret", name, False, f"${var} is not set", tuple(steps), hint)

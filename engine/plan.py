"""Plans as data: the contract between the planner (which fills it) and the engine (which runs it).

A :class:`Plan` is a DAG of :class:`Step` s with every parameter resolved, plus what the plan
achieves (recoverable point, data-loss window, RTO with its critical path). It is saved as
canonical JSON: the same plan always serialises to the same bytes, and its ``digest`` is the
SHA-256 of that serialisation with the digest field left empty. The runbook a person reads and
the run the engine executes are both rendered from this one saved file.

Params carry no secrets: a step names the secrets it needs as :class:`SecretRef` (where the
value is kept), and the engine fetches them at run time.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.errors import PlanFormatError

FORMAT_VERSION = 1

ParamValue = str | int | float | bool | None | list[Any] | dict[str, Any]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
    """A secret a step needs, by reference: never its value."""

    name: str = Field(description="e.g. dsrm-password, kms-startup-password")
    location: str = Field(description="where a person or the engine fetches it from")
    env: str | None = Field(default=None, description="environment variable the engine reads")


class Step(_Model):
    id: str = Field(description='stable and readable, e.g. "restore-logs.EX1.SG1"')
    kind: str = Field(description="a step kind of the step library (runbooks/)")
    title: str = ""
    host: str = Field(description="where it runs; 'operator' for steps a person does")
    params: dict[str, ParamValue] = Field(default_factory=dict)
    platform: dict[str, str] = Field(
        default_factory=dict,
        description="selects the library variant, e.g. {'exchange': '2003', 'windows': '2003'}",
    )
    needs: list[str] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=list, description="lock names, e.g. sg:EX1/SG1")
    estimate_seconds: float = 0.0
    destructive: bool = False
    secrets: list[SecretRef] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not value or any(ch.isspace() for ch in value):
            raise ValueError("a step id is non-empty and has no spaces")
        return value


class Target(_Model):
    what: str = Field(description="e.g. database EX1/SG1/Mailbox Store, server EX1, site")
    at: datetime | None = None
    point_of_failure: bool = False


class Sla(_Model):
    rpo_seconds: float | None = None
    rto_seconds: float | None = None


class Plan(_Model):
    format_version: int = FORMAT_VERSION
    scenario: str
    target: Target
    created_from: str = Field(description="SHA-256 of the inventory and catalog facts used")
    recoverable_point: datetime | None = None
    data_loss_window_seconds: float | None = None
    rto_estimate_seconds: float = 0.0
    critical_path: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    sla: Sla = Field(default_factory=Sla)
    facts: dict[str, Any] = Field(
        default_factory=dict, description="scenario facts shown in documents (chain used, ...)"
    )
    steps: list[Step]
    digest: str = ""

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def canonical_json(self) -> str:
        """The plan's bytes on disk: sorted keys, two-space indent, digest filled in."""
        body = _dump(self.model_copy(update={"digest": ""}))
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
        return _dump(self.model_copy(update={"digest": digest}))

    def sealed(self) -> Plan:
        """This plan with its digest computed (what ``save`` writes)."""
        return Plan.model_validate_json(self.canonical_json())

    def save(self, path: Path) -> Path:
        path.write_text(self.canonical_json(), encoding="utf-8")
        return path


def _dump(plan: Plan) -> str:
    data = plan.model_dump(mode="json")
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def validate_dag(steps: list[Step]) -> list[str]:
    """Check ids are unique, needs exist and there is no cycle; return a topological order."""
    ids = [s.id for s in steps]
    seen: set[str] = set()
    for sid in ids:
        if sid in seen:
            raise PlanFormatError(f"step id {sid!r} appears twice")
        seen.add(sid)
    for step in steps:
        for need in step.needs:
            if need not in seen:
                raise PlanFormatError(f"step {step.id!r} needs {need!r}, which is not in the plan")
    return _topological(steps)


def _topological(steps: list[Step]) -> list[str]:
    indegree = {s.id: len(set(s.needs)) for s in steps}
    dependents: dict[str, list[str]] = {s.id: [] for s in steps}
    for step in steps:
        for need in sorted(set(step.needs)):
            dependents[need].append(step.id)
    ready = sorted(sid for sid, deg in indegree.items() if deg == 0)
    order: list[str] = []
    while ready:
        sid = ready.pop(0)
        order.append(sid)
        for nxt in dependents[sid]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
        ready.sort()
    if len(order) != len(steps):
        stuck = sorted(sid for sid, deg in indegree.items() if deg > 0)
        raise PlanFormatError(f"the steps form a cycle (involving {', '.join(stuck[:5])})")
    return order


def critical_path(steps: list[Step]) -> tuple[float, list[str]]:
    """The longest chain of estimated durations through the DAG: (seconds, step ids)."""
    order = validate_dag(steps)
    by_id = {s.id: s for s in steps}
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for sid in order:
        step = by_id[sid]
        best, best_need = 0.0, None
        for need in sorted(set(step.needs)):
            if finish[need] > best:
                best, best_need = finish[need], need
        finish[sid] = best + step.estimate_seconds
        via[sid] = best_need
    if not finish:
        return 0.0, []
    end = max(sorted(finish), key=lambda sid: finish[sid])
    path: list[str] = []
    cursor: str | None = end
    while cursor is not None:
        path.append(cursor)
        cursor = via[cursor]
    return finish[end], list(reversed(path))


MAX_PLAN_BYTES = 64 * 1024 * 1024
_UNSEALED_HINT = (
    "make the plan again with `dr plan ... -o FILE`, or pass --unsealed to use it as it is "
    "(recorded in the run's journal)"
)


def seal_problem(plan: Plan) -> str | None:
    """Why ``plan`` is not sealed by its own digest, or None when it is."""
    if not plan.digest:
        return "the plan is not sealed (its digest is blank or missing)"
    if plan.canonical_json() != _dump(plan):
        return "the plan's digest does not match its content (edited after it was made?)"
    return None


def load_plan(path: Path, *, allow_unsealed: bool = False) -> Plan:
    """Read a saved plan, checking its format version, seal (digest) and DAG.

    A plan whose digest is blank, missing or wrong is refused unless ``allow_unsealed``;
    the caller then records that it used an unsealed plan (:func:`seal_problem` says why).
    """
    plan = _parse_plan(path, _read_plan(path))
    if plan.format_version != FORMAT_VERSION:
        raise PlanFormatError(f"{path}: plan format {plan.format_version} is not supported")
    validate_dag(plan.steps)
    problem = seal_problem(plan)
    if problem and not allow_unsealed:
        raise PlanFormatError(f"{path}: {problem}", hint=_UNSEALED_HINT)
    return plan


def _read_plan(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise PlanFormatError(
                f"{path}: the plan is larger than {MAX_PLAN_BYTES // (1024 * 1024)} MiB",
                hint="plans are written by `dr plan ... -o FILE`; is this the right file?",
            )
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanFormatError(f"{path}: cannot read plan ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise PlanFormatError(
            f"{path}: not UTF-8 text (byte {exc.start})",
            hint="plans are UTF-8 JSON written by `dr plan ... -o FILE`",
        ) from exc


def _parse_plan(path: Path, raw: str) -> Plan:
    try:
        return Plan.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise PlanFormatError(
            f"{path}: {field}: {first['msg']}",
            hint="plans are written by `dr plan ... -o FILE`; do not edit them by hand",
        ) from exc

"""The step library: how each step kind of a plan is carried out, loaded from YAML.

The planner decides *which* steps run, with which parameters; the library (``runbooks/*.yaml``)
says *how*: the PowerShell or cmd template, or the instructions a person follows, how to
verify the result, how to tell after a crash that it already happened, timeouts, retries,
locks and what to do on failure. Administrators adapt the library without touching code.

A kind has one or more *variants*, each with a ``when:`` block over the step's platform
(``exchange: ["2000", "2003"]``, ``windows: ">=2008"``); the most specific match wins.
See docs/runbooks.md for the format.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import LibraryError
from engine.plan import Step
from engine.resources import data_dir
from engine.yamlpos import Located, YamlSyntaxError, load_located

Action = Literal["powershell", "cmd", "manual", "approval", "check"]
ShellName = Literal["powershell", "cmd", "posix"]
Parser = Literal["exit-code", "regex", "json"]
OnFailure = Literal["abort", "pause", "continue"]

ENV_VAR = "DR_RUNBOOKS"
_KIND_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_SECRET_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_VERSION = re.compile(r"^(\d+)(?:\s*R(\d+))?$", re.IGNORECASE)
_RANGE = re.compile(r"^(>=|<=|>|<|==)?\s*(\S.*)$")
_PS_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?$")
NO_POWERSHELL = "none"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Verify(_Strict):
    """A command and how to read its output: a verification, or an "already done?" probe.

    Parsers are generic on purpose (the engine knows nothing about Exchange):
    ``exit-code`` (``expect``: a code or a list of codes, default 0); ``regex`` (every
    pattern must match, named groups must equal ``expect``, no ``absent`` pattern may
    match); ``json`` (``expect`` maps dotted paths to expected values).
    """

    command: str
    shell: ShellName | None = None
    parser: Parser = "exit-code"
    patterns: list[str] = Field(default_factory=list)
    absent: list[str] = Field(default_factory=list)
    expect: Any = None
    failure: str = Field(
        default="",
        description="what it means when this check fails, and what to do: said after the "
        "reason (a template, like the command)",
    )

    @model_validator(mode="after")
    def _parser_fields(self) -> Verify:
        if self.parser == "regex" and not (self.patterns or self.absent):
            raise ValueError("a regex check needs `patterns` (or `absent`)")
        if self.parser == "regex" and self.expect is not None and not isinstance(self.expect, dict):
            raise ValueError("a regex check's `expect` maps group names to values")
        if self.parser == "json" and not isinstance(self.expect, dict):
            raise ValueError("a json check's `expect` maps dotted paths to values")
        if self.parser != "regex" and (self.patterns or self.absent):
            raise ValueError("`patterns` and `absent` belong to the regex parser")
        if self.parser == "exit-code" and not _codes_ok(self.expect):
            raise ValueError("an exit-code check's `expect` is a code or a list of codes")
        return self


def _codes_ok(expect: Any) -> bool:
    if expect is None or (isinstance(expect, int) and not isinstance(expect, bool)):
        return True
    return isinstance(expect, list) and all(isinstance(c, int) for c in expect)


class Reboot(_Strict):
    """The step restarts its host: wait until it answers and these services run."""

    services: list[str] = Field(default_factory=list)
    services_param: str | None = None
    deadline_seconds: float = 1800.0


WhenValue = list[str] | str


class Needs(_Strict):
    """What a variant needs on its host beyond its ``when:`` block.

    ``powershell`` is a range over the host's Windows PowerShell (``">=3.0"``), checked
    against the step's ``platform["powershell"]`` (``"none"``: the host has none). ``snapin``
    (a snap-in name, or ``exchange-shell`` for the remote Exchange shell) and ``tools``
    (programs the commands call) are checked when the platform lists ``snapins`` / ``tools``
    (comma-separated); a platform without those keys is not asked about them.
    """

    powershell: str | None = None
    snapin: str | None = None
    tools: list[str] = Field(default_factory=list)

    @field_validator("powershell")
    @classmethod
    def _range_parses(cls, value: str | None) -> str | None:
        if value is not None and _parse_ps_condition(value) is None:
            raise ValueError(f"{value!r} is not a PowerShell version or a range like '>=3.0'")
        return value


class Variant(_Strict):
    """How a kind is carried out on one family of platforms."""

    when: dict[str, WhenValue] = Field(default_factory=dict)
    action: Action
    shell: ShellName | None = None
    command: str | None = None
    verify: Verify | None = None
    idempotency: Verify | None = None
    timeout_seconds: float = 600.0
    retries: int = Field(default=0, ge=0)
    backoff_seconds: float = Field(default=30.0, ge=0)
    resources: list[str] = Field(default_factory=list)
    on_failure: OnFailure = "abort"
    destructive: bool = False
    reboot: Reboot | None = None
    secrets: list[str] = Field(default_factory=list)
    instructions: str = ""
    record: list[str] = Field(default_factory=list)
    approvers: str | None = None
    needs: Needs = Field(default_factory=Needs)

    @field_validator("when", mode="before")
    @classmethod
    def _when_strings(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: [str(v) for v in c] if isinstance(c, list) else str(c) for k, c in value.items()}

    @field_validator("when")
    @classmethod
    def _when_parses(cls, value: dict[str, WhenValue]) -> dict[str, WhenValue]:
        for key, cond in value.items():
            items = cond if isinstance(cond, list) else [cond]
            for item in items:
                if _parse_key_condition(key, item) is None:
                    raise ValueError(f"{key}: {item!r} is not a version or a range like '>=2007'")
        return value

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _SECRET_NAME.match(name):
                raise ValueError(f"secret name {name!r}: use lower-case words and dashes")
        return value

    @model_validator(mode="after")
    def _action_fields(self) -> Variant:
        if self.action in ("powershell", "cmd", "check") and not self.command:
            raise ValueError(f"a `{self.action}` variant needs a `command`")
        if self.action in ("manual", "approval") and self.command:
            raise ValueError(f"a `{self.action}` variant has `instructions`, not a `command`")
        if self.action == "manual" and not self.instructions:
            raise ValueError("a `manual` variant needs `instructions`")
        if self.action == "approval" and not self.approvers:
            raise ValueError("an `approval` variant needs `approvers`")
        if self.action == "cmd" and self.shell not in (None, "cmd"):
            raise ValueError("a `cmd` variant runs in cmd; drop `shell`")
        if self.action == "powershell" and self.shell not in (None, "powershell"):
            raise ValueError("a `powershell` variant runs in PowerShell; drop `shell`")
        return self

    @property
    def effective_shell(self) -> ShellName:
        """The shell the command runs in: ``shell`` if set, else named by the action."""
        if self.shell is not None:
            return self.shell
        return "cmd" if self.action == "cmd" else "powershell"

    @property
    def uses_powershell(self) -> bool:
        """Whether anything the engine sends for this variant is a PowerShell script: the
        command, a check, or the reboot probe (PowerShell unless the command is posix)."""
        shell = self.effective_shell
        if self.command and shell == "powershell":
            return True
        for check in (self.verify, self.idempotency):
            if check is not None and (check.shell or shell) == "powershell":
                return True
        return self.reboot is not None and shell != "posix"


class StepKind(_Strict):
    """One kind of step: its title, description for people, parameters and variants."""

    name: str
    title: str
    description: str = ""
    params: list[str] = Field(default_factory=list)
    variants: list[Variant] = Field(min_length=1)
    source: str = ""

    @property
    def destructive(self) -> bool:
        return any(v.destructive for v in self.variants)


@dataclass(frozen=True)
class _Condition:
    op: str
    version: tuple[int, int]


def version_key(text: str) -> tuple[int, int] | None:
    """``"2003"`` → (2003, 0); ``"2008R2"`` → (2008, 2); anything else → None."""
    match = _VERSION.match(text.strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def _parse_condition(text: str) -> _Condition | None:
    match = _RANGE.match(text.strip())
    if not match:
        return None
    version = version_key(match.group(2))
    return _Condition(match.group(1) or "==", version) if version else None


def _holds(cond: _Condition, have: tuple[int, int]) -> bool:
    return {
        "==": have == cond.version,
        ">=": have >= cond.version,
        "<=": have <= cond.version,
        ">": have > cond.version,
        "<": have < cond.version,
    }[cond.op]


def ps_version_key(text: str) -> tuple[int, int] | None:
    """``"2.0"`` → (2, 0); ``"5.1"`` → (5, 1); ``"3"`` → (3, 0); anything else → None."""
    match = _PS_VERSION.match(text.strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def _parse_ps_condition(text: str) -> _Condition | None:
    match = _RANGE.match(text.strip())
    if not match:
        return None
    version = ps_version_key(match.group(2))
    return _Condition(match.group(1) or "==", version) if version else None


def unmet_needs(variant: Variant, platform: dict[str, str]) -> str | None:
    """Why ``variant`` cannot run on a host with ``platform``, or None if it can (or the
    platform does not say: a plan without ``powershell`` is not refused for it; see
    :func:`select_variant` for how such a platform chooses)."""
    have = platform.get("powershell")
    if have is not None:
        if have == NO_POWERSHELL and variant.uses_powershell:
            return "it sends PowerShell and the host has none"
        wanted = variant.needs.powershell
        have_key = ps_version_key(have)
        cond = _parse_ps_condition(wanted) if wanted else None
        if cond is not None and (have_key is None or not _holds(cond, have_key)):
            return f"it needs PowerShell {wanted} and the host has {have}"
    return _unmet_lists(variant.needs, platform)


def _unmet_lists(needs: Needs, platform: dict[str, str]) -> str | None:
    if needs.snapin and "snapins" in platform and needs.snapin not in _listed(platform["snapins"]):
        return f"it needs the {needs.snapin} shell and the host lists {platform['snapins']}"
    if needs.tools and "tools" in platform:
        missing = [t for t in needs.tools if t.lower() not in _listed(platform["tools"].lower())]
        if missing:
            return f"it needs {', '.join(missing)}, which the host does not list"
    return None


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _key_version(key: str, text: str) -> tuple[int, int] | None:
    """A platform value as a comparable version: Windows / Exchange years, or for the key
    ``powershell`` a PowerShell version with ``"none"`` below every version."""
    if key != "powershell":
        return version_key(text)
    return (0, 0) if text.strip() == NO_POWERSHELL else ps_version_key(text)


def _parse_key_condition(key: str, text: str) -> _Condition | None:
    if key != "powershell":
        return _parse_condition(text)
    if text.strip() == NO_POWERSHELL:
        return _Condition("==", (0, 0))
    return _parse_ps_condition(text)


def match_score(when: dict[str, WhenValue], platform: dict[str, str]) -> int | None:
    """How specifically ``when`` matches ``platform`` (None: no match; 0: a catch-all).

    Each key scores 2 when it names exact versions and 1 when it is a range, so a variant
    for ``["2003"]`` beats one for ``"<2007"``, and two keys beat one. The key
    ``powershell`` matches the host's PowerShell (``"none"``, ``"2.0"``, ``">=3.0"``); a
    platform that does not say it matches no such condition.
    """
    score = 0
    for key, cond in when.items():
        have = _key_version(key, platform.get(key, ""))
        if have is None:
            return None
        items = cond if isinstance(cond, list) else [cond]
        parsed = [c for c in (_parse_key_condition(key, i) for i in items) if c is not None]
        if not any(_holds(c, have) for c in parsed):
            return None
        score += 2 if all(c.op == "==" for c in parsed) else 1
    return score


def _check_override(old: StepKind | None, new: StepKind, directory: Path) -> None:
    """A directory may change how a kind is carried out, not its contract with the planner:
    an override with other parameters would be handed the wrong ones."""
    if old is not None and old.params != new.params:
        raise LibraryError(
            f"{directory}: kind {new.name!r} overrides the built-in with parameters "
            f"{new.params}; the planner gives {old.params}",
            hint="keep the kind's params as they are, or give your kind a new name",
        )


class Library:
    """The loaded step library: built-in kinds, then each user directory (which may override)."""

    def __init__(self, kinds: dict[str, StepKind]) -> None:
        self._kinds = dict(kinds)

    @classmethod
    def load(cls, extra_dirs: Sequence[Path] = (), *, templates: bool = True) -> Library:
        """The built-in library, plus ``extra_dirs`` and ``$DR_RUNBOOKS`` (a path list).

        ``templates=False`` leaves the templates' syntax check out: for a caller that reads
        only the kinds' flags and parameters (the planner's facts), never renders a step,
        and must not pay for compiling every template. Everything else is checked."""
        kinds: dict[str, StepKind] = {}
        for directory in library_dirs(extra_dirs):
            for name, kind in load_directory(directory, templates=templates).items():
                _check_override(kinds.get(name), kind, directory)
                kinds[name] = kind
        return cls(kinds)

    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def kind(self, name: str) -> StepKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise LibraryError(
                f"step kind {name!r} is not in the step library",
                hint="`dr runbook kinds` lists the kinds; add your own with DR_RUNBOOKS",
            ) from None

    def variant(self, step: Step) -> Variant:
        """The variant for ``step.platform``: the most specific match (the first on a tie)."""
        kind = self.kind(step.kind)
        return select_variant(kind, step.platform, where=f"step {step.id} on host {step.host}")


def claims(kind: StepKind, platform: dict[str, str]) -> bool:
    """Whether any variant's ``when:`` matches ``platform`` (whether or not it can run)."""
    return any(match_score(v.when, platform) is not None for v in kind.variants)


def select_variant(kind: StepKind, platform: dict[str, str], where: str = "") -> Variant:
    """The most specific variant whose ``when:`` matches and whose needs the host meets
    (the first on a tie). A kind whose matching variants all need more than the host has is
    refused, naming ``where`` (the step and host) and what each variant lacks."""
    shown = ", ".join(f"{k}={v}" for k, v in sorted(platform.items())) or "no platform"
    runnable: list[tuple[int, Variant]] = []
    refused: list[str] = []
    for index, variant in enumerate(kind.variants):
        score = match_score(variant.when, platform)
        if score is None:
            continue
        reason = unmet_needs(variant, platform)
        if reason is not None:
            refused.append(f"variant {index}: {reason}")
        else:
            runnable.append((score, variant))
    # A platform that does not say its PowerShell proves no `needs.powershell`: a variant
    # without one is taken first, the others only if nothing else matches.
    proven = [c for c in runnable if "powershell" in platform or not c[1].needs.powershell]
    for candidates in (proven, runnable):
        if candidates:
            top = max(score for score, _ in candidates)
            return next(v for score, v in candidates if score == top)
    if refused:
        subject = f"{where}: " if where else ""
        raise LibraryError(
            f"{subject}step kind {kind.name!r} cannot run on {shown}: {'; '.join(refused)} "
            f"({kind.source})",
            hint="add a variant the host can run (or a manual one), or record the host's "
            "PowerShell in the inventory (`powershell:`)",
        )
    raise LibraryError(
        f"step kind {kind.name!r} has no variant for {shown} ({kind.source})",
        hint="add a variant with a matching `when:` block, or fix the step's platform",
    )


def library_dirs(extra_dirs: Sequence[Path] = ()) -> list[Path]:
    """Built-in first, then the caller's directories, then ``$DR_RUNBOOKS``: later wins."""
    dirs = [data_dir("runbooks"), *[Path(d) for d in extra_dirs]]
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    for directory in dirs[1:]:
        if not directory.is_dir():
            raise LibraryError(f"{directory}: step library directory does not exist")
    return dirs


def load_directory(directory: Path, *, templates: bool = True) -> dict[str, StepKind]:
    """Every kind defined in ``directory/*.yaml``; a kind defined twice here is an error."""
    kinds: dict[str, StepKind] = {}
    for path in sorted(directory.glob("*.yaml")):
        for name, kind in load_file(path, templates=templates).items():
            if name in kinds:
                raise LibraryError(
                    f"{path}: kinds.{name}: already defined in {kinds[name].source}",
                    hint="a kind is defined once per directory; override it from another one",
                )
            kinds[name] = kind
    return kinds


#: (path, mtime_ns, size, templates checked) → kinds
_FILES: dict[tuple[str, int, int, bool], dict[str, StepKind]] = {}


def load_file(path: Path, *, templates: bool = True) -> dict[str, StepKind]:
    """Parse and validate one library file; any problem names file:line:column and field.

    A file already read in this process, unchanged since (same modification time and size),
    is not parsed and checked again: a lab day runs dozens of backup plans, each of which
    loads the library (the kinds are read-only models, shared). ``templates=False`` skips
    the templates' syntax check (see :meth:`Library.load`); a file read with the check
    serves both."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise LibraryError(f"{path}: cannot read ({exc.strerror})") from exc
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    found = _FILES.get((*key, True)) or _FILES.get((*key, templates))
    if found is None:
        found = _FILES[(*key, templates)] = _read_file(path, templates)
    return dict(found)


def _read_file(path: Path, templates: bool = True) -> dict[str, StepKind]:
    try:
        located = load_located(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LibraryError(f"{path}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise LibraryError(
            f"{path}: not UTF-8 text (byte {exc.start})", hint="save the library file as UTF-8"
        ) from None
    except YamlSyntaxError as exc:
        raise LibraryError(f"{path}:{exc.line}:{exc.column}: {exc.message}") from exc
    data = located.data
    if not isinstance(data, dict) or not isinstance(data.get("kinds"), dict):
        raise _problem(path, located, ("kinds",), "a library file has a `kinds:` mapping")
    unknown = sorted(set(data) - {"kinds"})
    if unknown:
        raise _problem(path, located, (unknown[0],), "unknown top-level field (expected `kinds`)")
    return {
        name: _load_kind(path, located, name, raw, templates) for name, raw in data["kinds"].items()
    }


def _load_kind(
    path: Path, located: Located, name: str, raw: Any, templates: bool = True
) -> StepKind:
    where = ("kinds", name)
    if not _KIND_NAME.match(str(name)):
        raise _problem(path, located, where, "a kind name is lower-case words and dashes")
    if not isinstance(raw, dict):
        raise _problem(path, located, where, "a kind is a mapping (title, variants, ...)")
    body = {k: v for k, v in raw.items() if k != "defaults"}
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise _problem(path, located, (*where, "defaults"), "`defaults` is a mapping")
    variants = body.get("variants")
    if isinstance(variants, list):
        body["variants"] = [{**defaults, **v} if isinstance(v, dict) else v for v in variants]
    try:
        kind = StepKind.model_validate({**body, "name": str(name), "source": str(path)})
    except ValidationError as exc:
        raise _from_validation(path, located, where, raw, exc) from exc
    if templates:
        _check_templates(path, located, kind)
    return kind


def _from_validation(
    path: Path, located: Located, where: tuple[str, ...], raw: dict[str, Any], exc: ValidationError
) -> LibraryError:
    first = exc.errors()[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    field_path = (*where, *loc)
    if len(loc) >= 3 and loc[0] == "variants" and isinstance(loc[1], int):
        variant = raw.get("variants", [])[loc[1]] if isinstance(raw.get("variants"), list) else {}
        if (
            isinstance(variant, dict)
            and loc[2] not in variant
            and loc[2] in raw.get("defaults", {})
        ):
            field_path = (*where, "defaults", *loc[2:])
    message = first["msg"].removeprefix("Value error, ")
    return _problem(path, located, field_path, message)


def _problem(
    path: Path, located: Located, field_path: Sequence[str | int], message: str
) -> LibraryError:
    pos = located.position(field_path)
    loc = f"{path}:{pos[0]}:{pos[1]}" if pos else str(path)
    field = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in field_path)
    field = field.replace(".[", "[")
    return LibraryError(f"{loc}: {field}: {message}", hint="see docs/runbooks.md for the format")


def _check_templates(path: Path, located: Located, kind: StepKind) -> None:
    """Compile every template now, so a syntax error is reported at load, with its place."""
    import jinja2  # here, not at the top: a plan loads the library without its templates

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    base = ("kinds", kind.name)
    for field_path, text in _templates(kind):
        try:
            env.parse(text)
        except jinja2.TemplateSyntaxError as exc:
            raise _problem(path, located, (*base, *field_path), f"template: {exc.message}") from exc


def _templates(kind: StepKind) -> Iterable[tuple[tuple[str | int, ...], str]]:
    yield ("description",), kind.description
    for i, v in enumerate(kind.variants):
        at: tuple[str | int, ...] = ("variants", i)
        for name in ("command", "instructions", "approvers"):
            value = getattr(v, name)
            if value:
                yield (*at, name), value
        for name in ("verify", "idempotency"):
            check = getattr(v, name)
            if check is not None:
                yield (*at, name, "command"), check.command
                for j, pattern in enumerate(check.patterns):
                    yield (*at, name, "patterns", j), pattern
                for j, pattern in enumerate(check.absent):
                    yield (*at, name, "absent", j), pattern
                if check.failure:
                    yield (*at, name, "failure"), check.failure
        for j, text in enumerate(v.resources):
            yield (*at, "resources", j), text
        for j, text in enumerate(v.record):
            yield (*at, "record", j), text


# --- checking output against a verification ---------------------------------------------


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


def check_output(check: Verify, exit_code: int, stdout: str) -> Verdict:
    """Judge a command's result against a (rendered) verification. Pure. A failed check
    that says what its failure means (``failure``) says it after the reason."""
    verdict = _judge(check, exit_code, stdout)
    if verdict.ok or not check.failure:
        return verdict
    return Verdict(False, f"{verdict.reason} — {check.failure.strip()}")


def _judge(check: Verify, exit_code: int, stdout: str) -> Verdict:
    if check.parser == "exit-code":
        wanted = check.expect if check.expect is not None else 0
        codes = wanted if isinstance(wanted, list) else [wanted]
        ok = exit_code in codes
        return Verdict(ok, f"exit code {exit_code}" + ("" if ok else f", expected {wanted}"))
    if exit_code != 0:
        return Verdict(False, f"exit code {exit_code}")
    if check.parser == "regex":
        return _check_regex(check, stdout)
    return _check_json(check, stdout)


def _check_regex(check: Verify, stdout: str) -> Verdict:
    groups: dict[str, str] = {}
    for pattern in check.patterns:
        match = re.search(pattern, stdout, re.MULTILINE | re.IGNORECASE)
        if match is None:
            return Verdict(False, f"no line matches {pattern!r}")
        groups.update({k: v for k, v in match.groupdict().items() if v is not None})
    for pattern in check.absent:
        match = re.search(pattern, stdout, re.MULTILINE | re.IGNORECASE)
        if match is not None:
            return Verdict(False, f"found {match.group(0).strip()!r}")
    for name, wanted in (check.expect or {}).items():
        have = groups.get(name)
        if have is None or have.strip().lower() != str(wanted).strip().lower():
            return Verdict(False, f"{name} is {have!r}, expected {wanted!r}")
    return Verdict(True, "output as expected")


def _check_json(check: Verify, stdout: str) -> Verdict:
    try:
        doc = json.loads(stdout.strip() or "null")
    except json.JSONDecodeError as exc:
        return Verdict(False, f"output is not JSON ({exc.msg})")
    for dotted, wanted in check.expect.items():
        have = _dig(doc, dotted)
        if have != wanted:
            return Verdict(False, f"{dotted} is {have!r}, expected {wanted!r}")
    return Verdict(True, "output as expected")


def _dig(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc.get(part)
        else:
            return None
    return doc

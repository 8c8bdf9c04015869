"""Rendering a plan step into the exact commands a host runs, and the text a person reads.

Every parameter reaches a shell through one of the quote functions below and nothing else:
the jinja2 environment for command templates has a ``finalize`` hook, so a bare
``{{ db }}`` is quoted for the template's shell automatically. The only ways around it are
filters that return :class:`Raw` text: ``raw`` (refuses anything but a conservative set of
characters), ``hex`` and ``logprefix`` (which produce or validate their own output), and
``secret('name')`` (an environment-variable *reference*; the value never enters the text).

A value written into a file that another interpreter reads (a ``.cmd`` file, a diskshadow
script, an argument of a native program) is quoted for *that* interpreter first, by the
filters ``cmd_arg``, ``diskshadow_arg`` and ``native_arg``; the result is a plain string,
which the template's own shell then quotes like any other value. What an interpreter cannot
take safely is refused with a :class:`~engine.errors.RenderError`, never escaped by hope.
Templates run in jinja2's sandbox: a step library cannot reach Python internals.

PowerShell: a single-quoted literal is verbatim; ``'`` and the typographic quotes
``‘ ’ ‚ ‛`` that PowerShell also treats as quotes are doubled. cmd.exe: a double-quoted
argument, refusing characters that cmd would still interpret inside quotes. POSIX ``sh``:
:func:`shlex.quote`.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, NoReturn

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from engine.errors import RenderError
from engine.plan import SecretRef, Step
from engine.runbook import ShellName, StepKind, Variant, Verify, unmet_needs
from engine.transports.base import Command

_PS_QUOTES = re.compile("(['\u2018\u2019\u201a\u201b])")
_CMD_REFUSED = re.compile(r'["%!\r\n\x00-\x1f]')
_SAFE_RAW = re.compile(r"^[A-Za-z0-9_.,:=+\-/\\]*$")
_LOG_PREFIX = re.compile(r"^E[0-9A-F]{2}$", re.IGNORECASE)
_UNDEFINED = re.compile(r"'([^']+)' is undefined")
# diskshadow reads a script line by line and expands %NAME% (aliases and environment
# variables, learn.microsoft.com/windows-server/administration/windows-commands/expose and
# .../add-alias); a double quote would end the quoted argument.
_DISKSHADOW_REFUSED = re.compile(r'["%\x00-\x1f\x7f]')
# PowerShell 5.1 passes a native program's arguments as one command line without escaping
# embedded double quotes (the Legacy style, ProcessStartInfo.Arguments: learn.microsoft.com/
# dotnet/api/system.management.automation.nativeargumentpassingstyle), so a quote would split
# one argument into several.
_NATIVE_REFUSED = re.compile(r'["\x00-\x1f\x7f]')
_DRIVE_PATH = re.compile(r"^([A-Za-z]):\\")
_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
SHADOW_LETTERS = "PQRS"


class Raw(str):
    """Text that is already safe for the shell; the finalize hook passes it through."""


class _Unsafe(Exception):
    """A value that cannot be placed in this shell safely (re-raised as RenderError)."""


# --- quoting ---------------------------------------------------------------------------


def quote_powershell(value: object) -> str:
    """A PowerShell single-quoted literal of ``str(value)``: verbatim, no expansion."""
    text = str(value)
    if "\x00" in text:
        raise _Unsafe("a NUL character cannot be passed to PowerShell")
    return "'" + _PS_QUOTES.sub(r"\1\1", text) + "'"


def quote_cmd(value: object) -> str:
    """A cmd.exe double-quoted argument, or an error for values cmd would reinterpret.

    Inside double quotes cmd treats ``& | < > ^`` literally, but still expands ``%VAR%``
    (and ``!VAR!``), ends the quote at ``"``, and ends the command at a line break; such
    values are refused rather than escaped. Trailing backslashes are doubled so that
    ``"C:\\dir\\"`` does not escape the closing quote for the program's argument parser.
    """
    text = str(value)
    bad = _CMD_REFUSED.search(text)
    if bad:
        shown = repr(bad.group(0))
        raise _Unsafe(f"{shown} cannot be passed safely to cmd.exe; use a PowerShell variant")
    stripped = text.rstrip("\\")
    return '"' + stripped + "\\" * (2 * (len(text) - len(stripped))) + '"'


def quote_diskshadow(value: object) -> str:
    """A diskshadow script argument in double quotes, or an error for what it would expand."""
    text = str(value)
    bad = _DISKSHADOW_REFUSED.search(text)
    if bad:
        shown = repr(bad.group(0))
        raise _Unsafe(f"{shown} cannot be written into a diskshadow script")
    return '"' + text + '"'


def native_argument(value: object) -> str:
    """``value`` checked to arrive as one argument of a native program started by PowerShell."""
    text = str(value)
    bad = _NATIVE_REFUSED.search(text)
    if bad:
        shown = repr(bad.group(0))
        raise _Unsafe(f"{shown} cannot be passed safely as an argument of a Windows program")
    return text


def quote_posix(value: object) -> str:
    """A POSIX sh single-quoted word (for steps dr runs on its own host)."""
    text = str(value)
    if "\x00" in text:
        raise _Unsafe("a NUL character cannot be passed to sh")
    return shlex.quote(text)


def secret_env(name: str) -> str:
    """The environment variable the engine sets to a secret's value: ``DR_SECRET_<NAME>``."""
    return "DR_SECRET_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def literal(value: Any, shell: ShellName) -> str:
    """``value`` as a literal of ``shell``: strings quoted, lists as arrays / words."""
    if isinstance(value, Raw):
        return str(value)
    if shell == "powershell":
        return _ps_literal(value)
    if isinstance(value, dict):
        raise _Unsafe(f"a mapping cannot be passed to {shell}; use a PowerShell variant")
    if isinstance(value, list | tuple):
        return " ".join(literal(item, shell) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and _finite(value):
        return str(value)
    text = "" if value is None else value
    return quote_cmd(text) if shell == "cmd" else quote_posix(text)


def _ps_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if value is None:
        return "$null"
    if isinstance(value, int | float) and _finite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return "@(" + ",".join(_ps_literal(v) for v in value) + ")"
    if isinstance(value, dict):
        pairs = "; ".join(f"{quote_powershell(k)}={_ps_literal(v)}" for k, v in value.items())
        return "@{" + pairs + "}"
    return quote_powershell(value)


def _finite(value: float) -> bool:
    return not (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))


# --- the jinja2 environments ------------------------------------------------------------


def _raw(value: Any) -> Raw:
    text = str(value)
    if not _SAFE_RAW.match(text):
        raise _Unsafe(
            f"{text!r} is not a safe constant for `| raw` (letters, digits, . , : = + - / \\)"
        )
    return Raw(text)


def _hex(value: Any, width: int = 8) -> Raw:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Unsafe(f"`| hex` needs a non-negative whole number, not {value!r}")
    return Raw(f"{value:0{int(width)}X}")


def _logprefix(value: Any) -> Raw:
    text = str(value)
    if not _LOG_PREFIX.match(text):
        raise _Unsafe(f"{text!r} is not a log prefix like E00")
    return Raw(text.upper())


def _cmd_arg(value: Any) -> str:
    """The cmd.exe quoted form of ``value`` as text for a generated ``.cmd`` file."""
    bad = _CMD_REFUSED.search(str(value))
    if bad:
        shown = repr(bad.group(0))
        raise _Unsafe(f"{shown} cannot be written into a .cmd file (cmd.exe would interpret it)")
    return quote_cmd(value)


def _diskshadow_arg(value: Any) -> str:
    return quote_diskshadow(value)


def _native_arg(value: Any) -> str:
    return native_argument(value)


def _drive(value: Any) -> str:
    """The drive letter of an absolute Windows path (``F:\\Logs`` → ``F``)."""
    match = _DRIVE_PATH.match(str(value))
    if not match:
        raise _Unsafe(f"{str(value)!r} is not an absolute path on a drive letter (like F:\\Logs)")
    return match.group(1).upper()


def _volume(value: Any) -> Raw:
    """A volume for diskshadow's ``add volume``: one drive letter, written ``F:``."""
    text = str(value)
    if not re.fullmatch(r"[A-Za-z]", text):
        raise _Unsafe(f"{text!r} is not a drive letter")
    return Raw(text.upper() + ":")


def _shadow_drive(index: Any) -> Raw:
    """Where the ``index``-th shadow copy is exposed: ``P:``, ``Q:``, ``R:``, ``S:``."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 4:
        raise _Unsafe(f"at most {len(SHADOW_LETTERS)} volumes can be shadow-copied at once")
    return Raw(SHADOW_LETTERS[index] + ":")


def _shadow(path: Any, volumes: Any) -> str:
    """``path`` on the shadow copy of its volume (the n-th of ``volumes`` is exposed as P:...)."""
    letters = [str(v).upper() for v in (volumes if isinstance(volumes, list | tuple) else [])]
    letter = _drive(path)
    if letter not in letters:
        raise _Unsafe(f"{str(path)!r} is not on one of the volumes {letters}")
    return str(_shadow_drive(letters.index(letter))) + str(path)[2:]


def _winjoin(base: Any, name: str) -> str:
    return str(base).rstrip("\\") + "\\" + name


def _word(value: Any) -> Raw:
    text = str(value)
    if not _WORD.match(text):
        raise _Unsafe(f"{text!r} is not a single word")
    return Raw(text)


_FILE_FILTERS: dict[str, Any] = {
    "cmd_arg": _cmd_arg,
    "diskshadow_arg": _diskshadow_arg,
    "native_arg": _native_arg,
    "drive": _drive,
    "volume": _volume,
    "shadow_drive": _shadow_drive,
    "shadow": _shadow,
    "winjoin": _winjoin,
    "word": _word,
}


def _command_env(shell: ShellName) -> jinja2.Environment:
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        finalize=lambda v: literal(v, shell),
        keep_trailing_newline=False,
        autoescape=False,
    )
    env.filters.update(raw=_raw, hex=_hex, logprefix=_logprefix, q=lambda v: Raw(literal(v, shell)))
    env.filters.update(_FILE_FILTERS)
    return env


def _text_env(finalize: Any) -> jinja2.Environment:
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, finalize=finalize, autoescape=False
    )
    env.filters.update(raw=lambda v: Raw(str(v)), hex=_hex, logprefix=_logprefix, bullets=_bullets)
    # a value inside a command a person types (e.g. a DN in ntdsutil's quoted argument)
    env.filters["native_arg"] = _native_arg
    return env


def _plain(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _bullets(value: Any) -> str:
    """A Markdown list of a list / mapping parameter (one item per line)."""
    if isinstance(value, dict):
        return "\n".join(f"- {k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "\n".join(f"- {_plain(v)}" for v in value)
    return f"- {_plain(value)}"


_COMMAND_ENVS: dict[str, jinja2.Environment] = {
    s: _command_env(s) for s in ("powershell", "cmd", "posix")
}  # type: ignore[misc]
_TEXT_ENV = _text_env(_plain)
_REGEX_ENV = _text_env(lambda v: v if isinstance(v, Raw) else re.escape(_plain(v)))


# --- rendering a step -------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedReboot:
    services: list[str]
    deadline_seconds: float


@dataclass(frozen=True)
class RenderedStep:
    """Everything needed to carry out one step, with every template filled in."""

    step_id: str
    kind: str
    title: str
    host: str
    action: str
    description: str
    command: Command | None
    verify: Command | None
    verify_check: Verify | None
    idempotency: Command | None
    idempotency_check: Verify | None
    resources: list[str]
    instructions: str
    record: list[str]
    approvers: str | None
    timeout_seconds: float
    retries: int
    backoff_seconds: float
    on_failure: str
    destructive: bool
    reboot: RenderedReboot | None
    secrets: list[SecretRef] = field(default_factory=list)
    secret_env: dict[str, str] = field(default_factory=dict)
    missing_secrets: list[str] = field(default_factory=list)


@dataclass
class _Context:
    kind: str
    step: Step
    variant: Variant
    used: set[str] = field(default_factory=set)  # secrets the rendered text asked for

    def fail(self, message: str) -> NoReturn:
        raise RenderError(
            f"step {self.step.id} (kind {self.kind}, host {self.step.host}): {message}",
            hint="fix the plan's parameter or the library template",
        )

    def secret_ref(self, shell: ShellName | None) -> Any:
        def secret(name: str) -> str:
            if name not in self.variant.secrets:
                self.fail(f"the template uses secret {name!r}, which the kind does not list")
            self.used.add(name)
            var = secret_env(name)
            if shell == "powershell":
                return Raw(f"$env:{var}")
            if shell == "cmd":
                return Raw(f"%{var}%")
            if shell == "posix":
                return Raw(f'"${var}"')
            return Raw(f"the {name} secret ({self.where(name)})")

        return secret

    def where(self, name: str) -> str:
        for ref in self.step.secrets:
            if ref.name == name:
                return f"fetched from {ref.location}"
        return "the plan does not say where it is kept"

    def render(self, env: jinja2.Environment, text: str, shell: ShellName | None, what: str) -> str:
        try:
            template = env.from_string(text)
            values = {**self.step.params, "secret": self.secret_ref(shell)}
            return template.render(values).strip()
        except jinja2.UndefinedError as exc:
            match = _UNDEFINED.search(str(exc))
            name = match.group(1) if match else str(exc)
            self.fail(f"the {what} template uses parameter {name!r}, which the step does not have")
        except _Unsafe as exc:
            self.fail(f"{what}: {exc}")
        except jinja2.TemplateError as exc:
            self.fail(f"{what}: template error: {exc}")


def render_step(variant: Variant, step: Step, kind: StepKind | None = None) -> RenderedStep:
    """Fill in every template of ``variant`` with ``step.params``, quoted for its shell."""
    ctx = _Context(kind.name if kind else step.kind, step, variant)
    if kind is not None:
        _check_params(ctx, kind)
    _check_needs(ctx)
    shell = variant.effective_shell
    command = None
    if variant.command:
        command = Command(
            script=ctx.render(_COMMAND_ENVS[shell], variant.command, shell, "command"), shell=shell
        )
    verify, verify_check = _render_check(ctx, variant.verify, shell, "verify")
    probe, probe_check = _render_check(ctx, variant.idempotency, shell, "idempotency")
    return RenderedStep(
        step_id=step.id,
        kind=ctx.kind,
        title=step.title or (kind.title if kind else step.kind),
        host=step.host,
        action=variant.action,
        description=ctx.render(_TEXT_ENV, kind.description, None, "description") if kind else "",
        command=command,
        verify=verify,
        verify_check=verify_check,
        idempotency=probe,
        idempotency_check=probe_check,
        resources=_resources(ctx, variant, step),
        instructions=ctx.render(_TEXT_ENV, variant.instructions, None, "instructions"),
        record=_record(ctx, variant),
        approvers=ctx.render(_TEXT_ENV, variant.approvers, None, "approvers")
        if variant.approvers
        else None,
        timeout_seconds=variant.timeout_seconds,
        retries=variant.retries,
        backoff_seconds=variant.backoff_seconds,
        on_failure=variant.on_failure,
        destructive=variant.destructive or step.destructive,
        reboot=_reboot(ctx, variant),
        secrets=[ref for ref in step.secrets if ref.name in variant.secrets],
        secret_env={name: secret_env(name) for name in variant.secrets},
        # a secret the kind lists but this step's text never asks for is not "missing"
        missing_secrets=[
            n for n in variant.secrets if n not in {r.name for r in step.secrets} and n in ctx.used
        ],
    )


def _check_needs(ctx: _Context) -> None:
    """A variant the step's host cannot run (its PowerShell, snap-in or tools) is refused."""
    reason = unmet_needs(ctx.variant, ctx.step.platform)
    if reason is not None:
        ctx.fail(f"the variant cannot run there: {reason}")


def _check_params(ctx: _Context, kind: StepKind) -> None:
    """A step gives exactly what its kind declares: a parameter the kind does not know is
    refused (a typo, or a plan made for another library)."""
    unknown = sorted(set(ctx.step.params) - set(kind.params))
    if unknown:
        declared = ", ".join(kind.params) or "none"
        ctx.fail(f"parameter {unknown[0]!r} is not one of the kind's parameters ({declared})")


def _render_check(
    ctx: _Context, check: Verify | None, shell: ShellName, what: str
) -> tuple[Command | None, Verify | None]:
    if check is None:
        return None, None
    own = check.shell or shell
    script = ctx.render(_COMMAND_ENVS[own], check.command, own, f"{what} command")
    patterns = [ctx.render(_REGEX_ENV, p, None, f"{what} pattern") for p in check.patterns]
    absent = [ctx.render(_REGEX_ENV, p, None, f"{what} pattern") for p in check.absent]
    expect = _render_expect(ctx, check.expect, what)
    failure = ctx.render(_TEXT_ENV, check.failure, None, f"{what} failure") if check.failure else ""
    rendered = check.model_copy(
        update={
            "command": script,
            "shell": own,
            "patterns": patterns,
            "absent": absent,
            "expect": expect,
            "failure": " ".join(failure.split()),
        }
    )
    return Command(script=script, shell=own), rendered


def _render_expect(ctx: _Context, expect: Any, what: str) -> Any:
    if isinstance(expect, dict):
        return {k: _render_expect(ctx, v, what) for k, v in expect.items()}
    if isinstance(expect, str) and "{" in expect:
        return ctx.render(_TEXT_ENV, expect, None, f"{what} expectation")
    return expect


def _resources(ctx: _Context, variant: Variant, step: Step) -> list[str]:
    names = [ctx.render(_TEXT_ENV, r, None, "resources") for r in variant.resources]
    return list(dict.fromkeys([*names, *step.resources]))


_WHOLE_PARAM = re.compile(r"^\{\{\s*(\w+)\s*\}\}$")


def _record(ctx: _Context, variant: Variant) -> list[str]:
    """What a person records; an entry that is one list parameter expands to its items."""
    out: list[str] = []
    for entry in variant.record:
        whole = _WHOLE_PARAM.match(entry.strip())
        value = ctx.step.params.get(whole.group(1)) if whole else None
        if isinstance(value, list):
            out.extend(_plain(v) for v in value)
        else:
            out.append(ctx.render(_TEXT_ENV, entry, None, "record"))
    return [line for line in out if line]


def _reboot(ctx: _Context, variant: Variant) -> RenderedReboot | None:
    if variant.reboot is None:
        return None
    services = list(variant.reboot.services)
    if variant.reboot.services_param:
        value = ctx.step.params.get(variant.reboot.services_param)
        if value is None:
            ctx.fail(f"reboot needs parameter {variant.reboot.services_param!r}")
        services += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return RenderedReboot(services=services, deadline_seconds=variant.reboot.deadline_seconds)

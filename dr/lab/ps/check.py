"""The static checker of every script dr sends (issue 16), without running any of it.

:func:`check_script` reads one PowerShell (or cmd) script the way a host with the given
PowerShell, Exchange and Windows versions would receive it: every cmdlet call is bound with
:func:`dr.lab.ps.binding.bind` (names, prefixes, parameter sets, mandatory parameters,
versions, the Exchange shell), every native tool's switches with :func:`dr.lab.ps.tools.parse`.
Values that are variables count as present. :func:`check_library` renders every variant of
every step kind of the step library — command, verification, idempotency check and the
engine's reboot probe — for every platform the variant's ``when:`` claims, with placeholder
parameters of the right type, and checks each script.

``python -m dr.lab.ps.check [--json]`` prints the findings of the built-in library, grouped by
step kind, platform, line and problem, and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dr.lab.ps import binding, signatures, tools
from dr.lab.ps.binding import BindError, bind, canonical_name
from dr.lab.ps.scan import Call, scan
from dr.lab.ps.versions import assumed_powershell, version_key

__all__ = ["PLATFORMS", "Finding", "check_library", "check_script", "main"]

# Exchange versions on the Windows versions they run on (Microsoft's Exchange Server
# supportability matrix, as the planner's estates use them), and Windows-only hosts (domain
# controllers, KMS and CA servers). A variant is checked on each platform it is selected for.
EXCHANGE_ON_WINDOWS: dict[str, tuple[str, ...]] = {
    "2000": ("2000",),
    "2003": ("2000", "2003"),
    "2007": ("2003", "2008"),
    "2010": ("2008", "2008R2"),
    "2013": ("2008R2", "2012", "2012R2"),
    "2016": ("2012", "2012R2", "2016"),
    "2019": ("2019", "2022"),
}
WINDOWS_ONLY = ("2000", "2003", "2008", "2008R2", "2012", "2012R2", "2016", "2019", "2022")
# Windows 2003 and 2008 ship no Windows PowerShell (versions.py): a host is checked as it is
# with the Windows Management Framework 2.0 (the checker's assumption) and, where its Exchange
# does not imply PowerShell (none, 2000, 2003), also without any.
NO_WMF_WINDOWS = ("2003", "2008")
PLATFORMS: tuple[dict[str, str], ...] = (
    *({"exchange": ex, "windows": w} for ex, ws in EXCHANGE_ON_WINDOWS.items() for w in ws),
    *({"windows": w} for w in WINDOWS_ONLY),
    *(
        {"exchange": ex, "windows": w, "powershell": "none"}
        for ex, ws in EXCHANGE_ON_WINDOWS.items()
        for w in ws
        if w in NO_WMF_WINDOWS and ex in ("2000", "2003")
    ),
    *({"windows": w, "powershell": "none"} for w in NO_WMF_WINDOWS),
)
# Kinds the planner sends to host "operator" without a platform (dr/planner/builder.py,
# mailbox.py, server.py, forest.py): they are also rendered with an empty platform.
OPERATOR_KINDS = (
    "approve",
    "manual",
    "verify-hardware",
    "restore-disk-image",
    "reset-computer-account",
    "install-windows",
)

_VERB_NOUN = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")
_NATIVE_SUFFIX = re.compile(r"\.(exe|com|cmd|bat)$", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """One problem: where (step, host, line, the call as written) and what (``problem``)."""

    step: str
    host: str
    line: int
    call: str
    problem: str
    rule: str = ""


# --- one script --------------------------------------------------------------------------


def check_script(
    script: str,
    *,
    ps_version: str | None,
    exchange_version: int | None,
    windows: str | None,
    shell: str = "powershell",
    exchange_cu: int | None = None,
    step: str = "",
    host: str = "",
) -> list[Finding]:
    """Every problem in ``script`` on a host with these versions (``ps_version`` None: none)."""
    ctx = _Context(ps_version, exchange_version, windows, exchange_cu, step, host)
    if shell == "cmd":
        return _dedupe(_check_cmd(script, ctx))
    if shell != "powershell":
        return []
    if ps_version is None:
        return [ctx.finding(1, _first_line(script), _no_powershell(windows), "no-powershell")]
    return _dedupe(_check_powershell(script, ctx))


@dataclass(frozen=True)
class _Context:
    ps_version: str | None
    exchange_version: int | None
    windows: str | None
    exchange_cu: int | None
    step: str
    host: str

    def finding(self, line: int, call: str, problem: str, rule: str) -> Finding:
        return Finding(self.step, self.host, line, _one_line(call), problem, rule)


def _no_powershell(windows: str | None) -> str:
    where = f"Windows {windows}" if windows else "this host"
    return (
        f"PowerShell script sent to {where}, which has no Windows PowerShell: "
        "use cmd or a manual step"
    )


def _check_powershell(script: str, ctx: _Context) -> list[Finding]:
    parsed = scan(script)
    out = [
        ctx.finding(line, "", f"syntax error: {what}", "syntax")
        for line, what in parsed.syntax_errors
    ]
    snapins = _snapin_calls(parsed.calls)
    for call in parsed.calls:
        if call.name.lower() in parsed.functions:
            continue
        loaded = frozenset(name for start, name in snapins if start < call.start)
        out.extend(_check_call(call, loaded, ctx))
    return out


def _snapin_calls(calls: Iterable[Call]) -> list[tuple[int, str]]:
    """(position, snap-in) for each literal ``Add-PSSnapin`` (and remote Exchange sessions)."""
    found = []
    for call in calls:
        canon = (canonical_name(call.name) or "").lower()
        if canon == "add-pssnapin":
            found += [(call.start, n) for n in _snapin_names(call)]
        elif canon == "" and call.name.lower() in ("import-pssession", "connect-exchangeserver"):
            found.append((call.start, binding.EXCHANGE_SHELL))
    return found


def _snapin_names(call: Call) -> list[str]:
    try:
        bound = bind(call.name, call.args, ps_version="5.1", exchange_version=None)
    except BindError:
        return []
    names = bound.params.get("Name")
    names = names if isinstance(names, list) else [names]
    return [n for n in names if isinstance(n, str)]


def _check_call(call: Call, snapins: frozenset[str] | None, ctx: _Context) -> list[Finding]:
    tool = tools.tool_name(call.name)
    if tools.describes(tool) or _NATIVE_SUFFIX.search(call.name) or call.dynamic:
        return _check_tool(call.name, call.argv, call.line, call.text, ctx)
    if not _VERB_NOUN.match(binding.ALIASES.get(call.name.lower(), call.name)):
        return []  # a native program the data does not describe
    out: list[Finding] = []
    args = list(call.args)
    for _ in range(len(args) + 2):  # each unknown parameter is reported, then left out
        try:
            bind(
                call.name,
                args,
                ps_version=ctx.ps_version,
                exchange_version=ctx.exchange_version,
                snapins=snapins,
                pipeline={"*"} if call.piped else None,
            )
        except BindError as exc:
            problem, rule = _explain(call, exc, snapins, ctx)
            out.append(ctx.finding(call.line, call.text, problem, rule))
            if rule == "exchange-shell" and snapins is not None:
                snapins = None  # report the shell, then check the call as if it were loaded
                continue
            args = _without_unknown(args, exc)
            if args is None:
                break
            continue
        break
    return out


def _without_unknown(args: list[binding.Arg], exc: BindError) -> list[binding.Arg] | None:
    """``args`` minus the parameter ``exc`` could not find (and a value written after it)."""
    match = re.search(r"matches parameter name '([^']+)'", exc.message)
    if match is None:
        return None
    for i, arg in enumerate(args):
        if arg.name == match.group(1):
            after = args[i + 1 :]
            if arg.value is binding.SWITCH and after and after[0].name is None:
                after = after[1:]
            return args[:i] + after
    return None


def _check_tool(name: str, argv: list[str], line: int, text: str, ctx: _Context) -> list[Finding]:
    try:
        tools.parse(
            name,
            argv,
            exchange_version=ctx.exchange_version,
            windows=ctx.windows,
            exchange_cu=ctx.exchange_cu,
        )
    except tools.ToolUsageError as exc:
        first = exc.text.splitlines()[0]
        return [ctx.finding(line, text, f"{tools.tool_name(name)}: {first}", "tool-switch")]
    return []


# --- explaining a binding error ----------------------------------------------------------


def _explain(
    call: Call, exc: BindError, snapins: frozenset[str] | None, ctx: _Context
) -> tuple[str, str]:
    kind = exc.fqid.split(",")[0]
    if kind == "CommandNotFoundException":
        return _explain_missing_cmdlet(call.name, snapins, ctx)
    if kind == "NamedParameterNotFound":
        return _explain_missing_parameter(call, exc, ctx)
    rules = {
        "AmbiguousParameter": "ambiguous-parameter",
        "AmbiguousParameterSet": "parameter-set",
        "MissingMandatoryParameter": "parameter-set",
        "MissingArgument": "missing-argument",
        "PositionalParameterNotFound": "positional",
        "ParameterAlreadyBound": "duplicate-parameter",
        "InputObjectNotBound": "pipeline",
    }
    return exc.message, rules.get(kind, "binding")


def _explain_missing_cmdlet(
    name: str, snapins: frozenset[str] | None, ctx: _Context
) -> tuple[str, str]:
    canon = canonical_name(name)
    if canon is None:
        return binding.not_recognized(name).message, "unknown-cmdlet"
    kind, record = signatures.lookup_record(canon) or ("exchange", {})
    if kind in ("core", "extra"):
        first = str(record.get("first_version") or signatures.core_min_version(record))
        if ctx.ps_version and version_key(ctx.ps_version) < version_key(first):
            return (
                f"{canon} needs PowerShell {first.lstrip('<=')}; the host has {ctx.ps_version}",
                "too-new",
            )
        return f"{canon} is not in PowerShell {ctx.ps_version}", "too-new"
    return _explain_exchange(canon, snapins, ctx)


def _explain_exchange(canon: str, snapins: frozenset[str] | None, ctx: _Context) -> tuple[str, str]:
    version = ctx.exchange_version
    if version is None or version < 2007:
        where = f"Exchange {version}" if version else "a host without Exchange"
        return (
            f"{canon} is an Exchange Management Shell cmdlet; {where} has no such shell",
            "exchange-shell",
        )
    if not binding.known(canon, ps_version=ctx.ps_version, exchange_version=version):
        if version == 2007:
            return (
                f"{canon}: no Microsoft Exchange 2007 page for it was found "
                "(dr/lab/data/cmdlets/exchange-2007.json), so it is not verified on 2007",
                "exchange-version",
            )
        return f"{canon} is not in Exchange {version}", "exchange-version"
    wanted = signatures.exchange_snapin(version)
    added = ", ".join(sorted(snapins or ())) or "none"
    return (
        f"{canon} needs the Exchange {version} shell (snap-in {wanted} or a remote session); "
        f"the script loads: {added}",
        "exchange-shell",
    )


def _explain_missing_parameter(call: Call, exc: BindError, ctx: _Context) -> tuple[str, str]:
    written = re.search(r"parameter name '([^']+)'", exc.message)
    param = written.group(1) if written else "?"
    canon = canonical_name(call.name) or call.name
    for version in ("2.0", "3.0", "4.0", "5.0", "5.1"):
        if ctx.ps_version and version_key(version) <= version_key(ctx.ps_version):
            continue
        if _binds_name(call, param, version, ctx.exchange_version):
            return (
                f"{canon} -{param} needs PowerShell {version}; the host has {ctx.ps_version}",
                "too-new",
            )
    for exchange in (2010, 2013, 2016, 2019):
        if (
            exchange != ctx.exchange_version
            and ctx.exchange_version
            and _binds_name(call, param, ctx.ps_version, exchange)
        ):
            return (
                f"{canon} -{param} is not in Exchange {ctx.exchange_version} (it is in {exchange})",
                "exchange-version",
            )
    return exc.message, "unknown-parameter"


def _binds_name(call: Call, param: str, ps: str | None, exchange: int | None) -> bool:
    try:
        bind(call.name, call.args, ps_version=ps, exchange_version=exchange, pipeline={"*"})
    except BindError as exc:
        return f"'{param}'" not in exc.message
    return True


# --- cmd scripts -------------------------------------------------------------------------

_CMD_SPLIT = re.compile(r"\s*(?:&&|\|\||&|\|)\s*")
_CMD_BUILTINS = {"if", "cd", "exit", "echo", "set", "copy", "del", "rd", "md", "mkdir", "move"}
_CMD_BUILTINS |= {"type", "dir", "call", "goto", "rem", "pushd", "popd", "for", "ren", "start"}


def _check_cmd(script: str, ctx: _Context) -> list[Finding]:
    out = []
    for number, line in enumerate(script.splitlines(), start=1):
        for command in _cmd_commands(line):
            words = _cmd_words(command)
            if not words or words[0].lower().lstrip("(@") in _CMD_BUILTINS:
                continue
            tool = tools.tool_name(words[0])
            if tools.describes(tool):
                out.extend(_check_tool(words[0], words[1:], number, command, ctx))
    return out


def _cmd_commands(line: str) -> list[str]:
    parts, current, quoted = [], "", False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == '"':
            quoted = not quoted
        if not quoted and ch in "&|":
            parts.append(current)
            current = ""
            i += 2 if line[i : i + 2] in ("&&", "||") else 1
            continue
        current += ch
        i += 1
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _cmd_words(command: str) -> list[str]:
    """Words as a program's C runtime splits its command line: quotes group, then vanish."""
    words, current, quoted, started = [], "", False, False
    for ch in command:
        if ch == '"':
            quoted, started = not quoted, True
        elif ch.isspace() and not quoted:
            if started:
                words.append(current)
            current, started = "", False
        else:
            current, started = current + ch, True
    if started:
        words.append(current)
    return words


# --- the step library --------------------------------------------------------------------

PLACEHOLDERS: dict[str, Any] = {
    "administrative_group": "First Administrative Group",
    "after_gen": 4660,
    "authoritative": True,
    "backup_name": 17,
    "backup_path": "C:\\drtemp\\ca",
    "backup_type": "full",
    "chain": [11, 12],
    "components": ["Mailbox", "ManagementTools"],
    "database": "EX1\\First Storage Group\\Mailbox Store",
    "db": "Mailbox Database",
    "db_path": "E:\\Data",
    "deleted_at": "2024-05-15T11:40:00+00:00",
    "dest": "C:\\drtemp\\backup",
    "dest_dir": "E:\\Data",
    "domain": "corp.example.com",
    "edb": "E:\\Data\\Mailbox Database.edb",
    "expect_state": "Clean Shutdown",
    "expected": {"alice": 120, "bob": 80},
    "first_gen": 4650,
    "forest": "corp.example.com",
    "install_path": "C:\\Program Files\\Microsoft\\Exchange Server",
    "instructions": "Check the directory.",
    "items": "all",
    "kms_path": "C:\\Program Files\\Exchsrvr\\KMSData",
    "last_gen": 4660,
    "last_restore_set": False,
    "legacy_exchange_dn": "/o=Example/ou=First Administrative Group",
    "log_path": "F:\\Logs",
    "mailbox": "alice",
    "mailboxes": ["alice", "bob"],
    "name": "RDB1",
    "objects": ["CN=Alice,OU=Staff,DC=corp,DC=example,DC=com"],
    "organization": "Example",
    "path": "C:\\drtemp\\First Storage Group",
    "paths": ["E:\\Data\\Mailbox Database.edb"],
    "prefix": "E00",
    "reason": "restore",
    "record": "what the directory shows",
    "recovery_db": "RDB1",
    "requirements": "Windows 2016; drives C: 100 GB",
    "role": "second administrator",
    "server": "EX1",
    "service_pack": "SP2",
    "services": ["MSExchangeIS"],
    "sg": "First Storage Group",
    "source": "E:\\Data",
    "source_server": "EX1",
    "stm": "E:\\Data\\Mailbox Database.stm",
    "system_path": "C:\\drtemp\\First Storage Group",
    "target_folder": "Recovered",
    "temp_folder": "C:\\drtemp\\First Storage Group",
    "user": "alice",
    "version": 17,
    "versions": [11, 12],
    "volumes": ["E", "F"],
    "windows_version": "2016",
}


def platform_label(platform: dict[str, str]) -> str:
    parts = [f"Exchange {platform['exchange']}"] if "exchange" in platform else []
    parts += [f"Windows {platform['windows']}"] if "windows" in platform else []
    label = " on ".join(parts) or "no platform"
    if platform.get("powershell") == "none" and platform.get("windows") in NO_WMF_WINDOWS:
        label += " without PowerShell"
    return label


def check_library(library: Any, platforms: Sequence[dict[str, str]] | None = None) -> list[Finding]:
    """Render and check every variant of every kind of ``library`` on ``platforms``."""
    from engine.runbook import select_variant

    out: list[Finding] = []
    for kind_name in library.kinds():
        kind = library.kind(kind_name)
        targets = list(platforms if platforms is not None else PLATFORMS)
        if kind_name in OPERATOR_KINDS:
            targets.append({})
        for platform in targets:
            out.extend(_check_kind_on(kind, platform, select_variant))
    return _dedupe(out)


def with_powershell(platform: dict[str, str]) -> dict[str, str]:
    """``platform`` with the PowerShell the checker assumes for its Windows (``"none"``: none),
    as the planner's ``platform_of`` adds it; a platform without Windows is left as it is."""
    windows = platform.get("windows")
    if windows is None or "powershell" in platform:
        return dict(platform)
    return {**platform, "powershell": assumed_powershell(windows) or "none"}


def _check_kind_on(kind: Any, platform: dict[str, str], select: Any) -> list[Finding]:
    """The findings of the variant selected for ``platform`` (see :func:`checked_variant`)."""
    from engine.errors import EngineError
    from engine.runbook import claims

    label = platform_label(platform)
    platform = with_powershell(platform)
    if platform and not claims(kind, platform):
        return []  # the kind does not claim this platform
    try:
        variant, facts, refused = checked_variant(kind, platform, select)
    except EngineError as exc:
        return [Finding(kind.name, label, 0, "", str(exc).split(" (")[0], "unrenderable")]
    index = kind.variants.index(variant)
    try:
        rendered = render_placeholder_step(kind, variant, facts)
    except EngineError as exc:
        return [Finding(f"{kind.name}[{index}]", label, 0, "", str(exc), "unrenderable")]
    found = _check_rendered(f"{kind.name}[{index}]", label, platform, rendered)
    if refused is None or found:
        return found
    return [Finding(kind.name, label, 0, "", refused, "unrunnable")]


def checked_variant(
    kind: Any, platform: dict[str, str], select: Any = None
) -> tuple[Any, dict[str, str], str | None]:
    """(variant, the platform to render it with, why the selection refused or None).

    Where the selection refuses every variant (the host cannot run them), the variant its
    ``when:`` picks is checked anyway, rendered without the PowerShell fact, so the finding
    names the call at fault; a refusal with no such call is reported as it is. A platform
    no variant claims raises the selection's error."""
    from engine.errors import EngineError
    from engine.runbook import claims, select_variant

    select = select or select_variant
    try:
        return select(kind, platform), platform, None
    except EngineError as exc:
        if not platform or not claims(kind, platform):
            raise
        facts = {k: v for k, v in platform.items() if k != "powershell"}
        return _when_best(kind, platform), facts, str(exc).split(" (")[0]


def _when_best(kind: Any, platform: dict[str, str]) -> Any:
    """The variant ``when:`` alone selects (the most specific match, the first on a tie)."""
    from engine.runbook import match_score

    scored = [(match_score(v.when, platform), i) for i, v in enumerate(kind.variants)]
    best = max((s, -i) for s, i in scored if s is not None)
    return kind.variants[-best[1]]


def render_placeholder_step(kind: Any, variant: Any, platform: dict[str, str]) -> Any:
    """``variant`` rendered with placeholder parameters on a host with ``platform`` (whose
    needs the renderer checks only against the facts ``platform`` gives)."""
    from engine.plan import Step
    from engine.render import render_step

    params = {p: PLACEHOLDERS.get(p, "placeholder") for p in kind.params}
    step = Step(
        id=f"{kind.name}.check", kind=kind.name, host="HOST", params=params, platform=platform
    )
    return render_step(variant, step, kind)


def _check_rendered(
    step: str, label: str, platform: dict[str, str], rendered: Any
) -> list[Finding]:
    from engine.executor import reboot_probe

    windows = platform.get("windows")
    exchange = int(platform["exchange"]) if "exchange" in platform else None
    have = with_powershell(platform).get("powershell", "5.1")
    ps_version = None if have == "none" else have
    scripts = [("command", rendered.command), ("verify", rendered.verify)]
    scripts.append(("idempotency", rendered.idempotency))
    if rendered.reboot is not None:
        shell = rendered.command.shell if rendered.command is not None else "powershell"
        scripts.append(("reboot-probe", reboot_probe(tuple(rendered.reboot.services), shell)))
    out = []
    for part, command in scripts:
        if command is None:
            continue
        out.extend(
            check_script(
                command.script,
                ps_version=ps_version,
                exchange_version=exchange,
                windows=windows,
                shell=command.shell,
                step=f"{step}.{part}",
                host=label,
            )
        )
    return out


# --- output ------------------------------------------------------------------------------


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 160 else line[:157] + "..."


def _first_line(script: str) -> str:
    return next((line for line in script.splitlines() if line.strip()), "")


def group(findings: Iterable[Finding]) -> dict[str, dict[str, list[Finding]]]:
    """Findings by step kind, then platform (each list sorted by line)."""
    out: dict[str, dict[str, list[Finding]]] = {}
    for f in findings:
        kind = f.step.split("[")[0].split(".")[0]
        out.setdefault(kind, {}).setdefault(f.host, []).append(f)
    for platforms in out.values():
        for items in platforms.values():
            items.sort(key=lambda f: (f.step, f.line))
    return out


def render_text(findings: list[Finding]) -> str:
    lines = []
    for kind, platforms in sorted(group(findings).items()):
        lines.append(kind)
        for platform, items in sorted(platforms.items()):
            lines.append(f"  {platform}")
            for f in items:
                part = f.step.split(".", 1)[1] if "." in f.step else "-"
                lines.append(f"    {part} line {f.line}: {f.problem}")
                if f.call:
                    lines.append(f"      {f.call}")
    distinct = len({(f.step, f.problem) for f in findings})
    lines.append(f"{len(findings)} findings ({distinct} distinct by step and problem)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dr.lab.ps.check", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args(argv)
    from engine.runbook import Library

    findings = check_library(Library.load())
    if args.json:
        print(json.dumps([asdict(f) for f in findings], indent=2))
    else:
        print(render_text(findings))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

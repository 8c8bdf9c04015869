"""Native tools' command lines checked against their documented syntax (``tools.json``).

:func:`parse` splits a tool's argv into mode, switches and operands and raises
:class:`ToolUsageError` for a command line the tool would refuse; :func:`check` does the same
for a host (``.exchange_version``, ``.windows``, optionally ``.exchange_cu``).

What is checked, and where the rules come from (sources in ``dr/lab/data/cmdlets/tools.json``):

- eseutil — the ESE source's own parser (dev/ese/src/eseutil/eseutil.cxx): the first argument
  is the mode, options per mode, one file/base-name operand, path values attached or as the
  next argument, eseutil's own "Usage Error: ..." strings. A usage error ends with
  ``JET_errInvalidParameter`` (-1003), the value eseutil returns.
- robocopy — robocopy.md (2017/2018 revisions): the option list; a value where the syntax
  shows one; /MT not with /IPG or /EFSRAW. Exit code 16 ("serious error": above 8 is failure);
  the "ERROR : Invalid Parameter" text is robocopy's console wording, not from the data.
- wbadmin — wbadmin-start-systemstaterecovery / -get-versions / -start-recovery /
  -start-systemstatebackup.md: the subcommand, its switches, ``-version:`` as
  MM/DD/YYYY-HH:MM, ``-machine`` only with ``-backupTarget``, ``-showsummary`` alone.
- Exchange setup — unattended-installs.md: ``/IAcceptExchangeServerLicenseTerms`` before
  Exchange 2016 CU22 / 2019 CU11, one of the ``_DiagnosticDataON|OFF`` forms from those CUs on
  (the old form "is no longer available"); ``/Mode:`` (``/m:``) values; 2013's switches from
  its own page. 2000/2003 take ``/disasterrecovery``. Exchange 2007 / 2010 Setup.com: no
  Microsoft source was found, so nothing is checked there. An unknown CU counts as the latest.
- bcdedit, netdom, diskshadow, certutil — the command / verb lists of their pages; certutil's CA
  backup and restore verbs (-backup, -backupDB, -backupKey, -restore, -restoreDB, -restoreKey)
  are checked for their options and operands; other verbs the data does not list are accepted
  as unverified.
- ntdsutil — the commands typed at its authoritative restore menu (Microsoft's subcommand page,
  2003-2008) and, from Windows 2008 on, at its top-level menu (the 2008 command reference).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from dr.lab.ps.versions import load, normalize_windows

__all__ = ["ToolCall", "ToolUsageError", "check", "describes", "parse", "tool_name"]

JET_ERR_INVALID_PARAMETER = -1003
_ESE_FAILURE = (
    "Operation terminated with error -1003 (JET_errInvalidParameter, Invalid API parameter) "
    "after 0.0 seconds."
)


class ToolUsageError(Exception):
    """The tool refuses the command line: ``text`` is what it prints, ``exit_code`` its code."""

    def __init__(self, text: str, exit_code: int) -> None:
        super().__init__(text)
        self.text = text
        self.exit_code = exit_code


@dataclass(frozen=True)
class ToolCall:
    tool: str
    mode: str | None
    switches: dict[str, str | bool] = field(default_factory=dict)
    operands: list[str] = field(default_factory=list)


def tool_name(command: str) -> str:
    """``C:\\...\\Bin\\eseutil.exe`` → ``eseutil``; ``Setup.com`` → ``setup``."""
    base = re.split(r"[\\/]", command.strip().strip("\"'"))[-1].lower()
    return re.sub(r"\.(exe|com|cmd|bat)$", "", base)


def describes(tool: str) -> bool:
    """Whether this module knows ``tool``'s syntax (others are accepted unchecked)."""
    return tool_name(tool) in _PARSERS


def parse(
    tool: str,
    argv: list[str],
    *,
    exchange_version: int | None,
    windows: str | None,
    exchange_cu: int | None = None,
) -> ToolCall:
    """The parsed command line; raises :class:`ToolUsageError` where the tool would refuse it."""
    name = tool_name(tool)
    parser = _PARSERS.get(name)
    if parser is None:
        return ToolCall(name, None, {}, list(argv))
    return parser(list(argv), _Host(exchange_version, windows, exchange_cu))


def check(tool: str, argv: list[str], host: Any) -> None:
    """Raise :class:`ToolUsageError` if ``host`` would refuse ``tool argv``."""
    parse(
        tool,
        argv,
        exchange_version=getattr(host, "exchange_version", None),
        windows=getattr(host, "windows", None),
        exchange_cu=getattr(host, "exchange_cu", None),
    )


@dataclass(frozen=True)
class _Host:
    exchange_version: int | None
    windows: str | None
    exchange_cu: int | None


def _tools() -> dict[str, Any]:
    return dict(load("tools.json")["tools"])


# --- eseutil -----------------------------------------------------------------------------

_PAGE_SIZES = {"2", "4", "8", "16", "32"}
_ESE_COMMON_FLAGS = {"o"} | _PAGE_SIZES


def _ese_error(template: str, *values: str) -> ToolUsageError:
    message = _tools()["eseutil"]["usage_errors_from_source"][template]
    text = message.replace("%s", values[0]) if values else message
    return ToolUsageError(f"{text}\r\n\r\n{_ESE_FAILURE}", JET_ERR_INVALID_PARAMETER)


@dataclass(frozen=True)
class _EseOption:
    name: str
    value: str  # "none" | "required" | "optional" | "next"


@cache
def _ese_options(mode: str) -> dict[str, _EseOption]:
    spec = _tools()["eseutil"]["modes"][mode]
    keys = list(spec.get("options", {})) + list(spec.get("accepted_but_not_in_retail_help", {}))
    keys += list(spec.get("undocumented", []))
    out: dict[str, _EseOption] = {}
    for key in keys:
        for part in key.split(" /"):
            opt = _ese_option(part.strip().lstrip("/"))
            out.setdefault(opt.name, opt)
    for flag in _ESE_COMMON_FLAGS:
        out.setdefault(flag, _EseOption(flag, "none"))
    return out


def _ese_option(text: str) -> _EseOption:
    """``l<path>`` required, ``d[path]`` optional, ``p <database>`` next, ``i`` none."""
    match = re.match(r"^([a-z0-9]+?)(\[f\])?(<[^>]*>|\[[^\]]*\])?(\s+<[^>]*>)?$", text)
    if not match:
        return _EseOption(text, "none")
    name, kf, attached, nxt = match.groups()
    if name.isdigit() or name in ("c5", "c8", "detach"):
        return _EseOption(name, "none")
    if kf:  # /k[f] <database>: both /k and /kf take the next argument
        return _EseOption(name, "next")
    if nxt:
        return _EseOption(name, "next")
    if attached:
        return _EseOption(name, "optional" if attached.startswith("[") else "required")
    return _EseOption(name, "none")


_ESE_MODES = {"d": "/d", "r": "/r", "g": "/g", "k": "/k", "p": "/p", "m": "/m", "y": "/y"}
_ESE_MODES |= {"c": "/c", "z": "/z"}


def _eseutil(argv: list[str], host: _Host) -> ToolCall:
    if not argv:
        raise _ese_error("no_mode")
    first = argv[0]
    if first[:1] not in "-/" or len(first) < 2:
        raise _ese_error("mode_not_switch")
    mode, modifier = _ese_mode(first[1:].lower())
    switches: dict[str, str | bool] = {}
    operands: list[str] = []
    i = 1
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg[:1] not in "-/":
            operands.append(arg)
            continue
        i = _ese_take_option(mode, arg, argv, i, switches, bool(operands))
    label = "logfile base name" if mode == "/r" else "database/filename"
    if not operands and mode not in ("/c",):
        raise _ese_error("missing", label)
    if len(operands) > 1:
        raise _ese_error("duplicate", label)
    return ToolCall("eseutil", mode + modifier, switches, operands)


def _ese_mode(body: str) -> tuple[str, str]:
    if body == "?":
        return "/?", ""
    letter, modifier = body[0], body[1:]
    mode = _ESE_MODES.get(letter)
    if mode is None:
        raise _ese_error("invalid_mode")
    spec = _tools()["eseutil"]["modes"][mode]
    allowed = set(spec.get("modifiers", {}))
    if mode == "/m":
        allowed.add("")
    if modifier and modifier not in allowed:
        raise _ese_error("invalid_mode")
    if not modifier and mode == "/m":
        modifier = "h"
    return mode, modifier


def _ese_take_option(
    mode: str, arg: str, argv: list[str], i: int, switches: dict[str, str | bool], have: bool
) -> int:
    body = arg[1:].lower()
    options = _ese_options(mode)
    optional = body in options and options[body].value == "optional"
    if optional and have and i < len(argv) and argv[i][:1] not in "-/":
        # "/d D:\\db": a path option takes the next argument unless it is a switch
        switches["/" + body] = argv[i]
        return i + 1
    if body in options and options[body].value in ("none", "optional"):
        switches["/" + body] = True
        return i
    if body in options and options[body].value == "next":
        return _ese_next(arg, argv, i, switches, "/" + body)
    opt = options.get(body[:1])
    if opt is None or opt.value == "none":
        raise _ese_error("invalid_option", arg)
    value = body[1:].lstrip(":")
    if opt.value == "next" and not value:
        return _ese_next(arg, argv, i, switches, "/" + opt.name)
    if not value and opt.value == "required":
        if i < len(argv) and argv[i][:1] not in "-/":
            switches["/" + opt.name] = argv[i]
            return i + 1
        raise _ese_error("missing", arg)
    switches["/" + opt.name] = arg[2:].lstrip(":") if value else True
    return i


def _ese_next(arg: str, argv: list[str], i: int, switches: dict[str, str | bool], key: str) -> int:
    if i < len(argv) and argv[i][:1] not in "-/":
        switches[key] = argv[i]
        return i + 1
    raise _ese_error("missing", arg)


# --- robocopy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _RoboOption:
    name: str
    value: str  # "none" | "required" | "optional" | "list"


@cache
def _robocopy_options() -> dict[str, _RoboOption]:
    out: dict[str, _RoboOption] = {}
    for entries in _tools()["robocopy"]["options"].values():
        for entry in entries:
            for opt in _robo_entry(entry):
                out[opt.name] = opt
    return out


def _robo_entry(entry: str) -> list[_RoboOption]:
    head = entry.split(" (")[0].strip()
    match = re.match(r"^/([A-Za-z0-9+\-]+?)(\[:[^\]]*\]|:\S*)?(\s+<.*)?$", head)
    if not match:
        return []
    name, val, lst = match.group(1).lower(), match.group(2), match.group(3)
    kind = (
        "list"
        if lst
        else "optional"
        if val and val.startswith("[")
        else "required"
        if val
        else "none"
    )
    found = [_RoboOption(name, kind)]
    for alt in re.findall(r"revision: /(\w+)", entry):
        found.append(_RoboOption(alt.lower(), kind))
    return found


def _robo_error(arg: str, index: int) -> ToolUsageError:
    return ToolUsageError(f'ERROR : Invalid Parameter #{index} : "{arg}"', 16)


def _robocopy(argv: list[str], host: _Host) -> ToolCall:
    options = _robocopy_options()
    switches: dict[str, str | bool] = {}
    operands: list[str] = []
    current_list: str | None = None
    for index, arg in enumerate(argv, start=1):
        if not arg.startswith("/"):
            if current_list is not None:
                values = switches.get(current_list)
                switches[current_list] = f"{values} {arg}" if isinstance(values, str) else arg
            else:
                operands.append(arg)
            continue
        current_list = None
        name, _, value = arg[1:].partition(":")
        opt = options.get(name.lower())
        if opt is None or not _robo_value_ok(opt, name, value, arg):
            raise _robo_error(arg, index)
        key = "/" + opt.name
        switches[key] = value if ":" in arg else True
        if opt.value == "list":
            current_list = key
    if len(operands) < 2:
        raise ToolUsageError("ERROR : No Destination Directory Specified.", 16)
    if "/mt" in switches and ({"/ipg", "/efsraw"} & set(switches)):
        raise ToolUsageError("ERROR : /MT cannot be used with /IPG or /EFSRAW.", 16)
    return ToolCall("robocopy", None, switches, operands)


def _robo_value_ok(opt: _RoboOption, name: str, value: str, arg: str) -> bool:
    has_colon = ":" in arg
    if opt.value in ("none", "list"):
        return not has_colon
    if opt.value == "required" and not value:
        return False
    if opt.name in ("r", "w", "lev", "mt", "mon", "mot", "ipg", "max", "min") and value:
        return value.isdigit()
    if opt.name == "copy":
        return bool(value) and set(value.upper()) <= set("DATSOU")
    return True


# --- wbadmin -----------------------------------------------------------------------------

_WB_VERSION = re.compile(r"^\d{2}/\d{2}/\d{4}-\d{2}:\d{2}$")


def _wb_error(message: str) -> ToolUsageError:
    return ToolUsageError(f"ERROR - {message}", 1)


def _wbadmin(argv: list[str], host: _Host) -> ToolCall:
    words = [a for a in argv if not a.startswith("-")]
    if len(words) < 2:
        raise _wb_error("a command (for example 'start systemstaterecovery') is required.")
    sub = f"{words[0].lower()} {words[1].lower()}"
    spec = _tools()["wbadmin"]["subcommands"].get(sub)
    if spec is None:
        raise _wb_error(f"'{words[0]} {words[1]}' is not a wbadmin command this data documents.")
    allowed = {k.rstrip(":").lower(): k.endswith(":") for k in spec["switches"]}
    allowed |= _wb_syntax_switches(spec["syntax"])
    switches = _wb_switches(argv, allowed)
    _wb_rules(sub, switches)
    return ToolCall("wbadmin", sub, switches, words[2:])


def _wb_syntax_switches(syntax: str) -> dict[str, bool]:
    return {m.group(1).lower(): bool(m.group(2)) for m in re.finditer(r"-(\w+)(:)?", syntax)}


def _wb_switches(argv: list[str], allowed: dict[str, bool]) -> dict[str, str | bool]:
    out: dict[str, str | bool] = {}
    for arg in argv:
        if not arg.startswith("-"):
            continue
        name, colon, value = arg[1:].partition(":")
        key = name.lower()
        if key not in allowed:
            raise _wb_error(f"'{arg}' is not a valid parameter for this command.")
        if allowed[key] and not value:
            raise _wb_error(f"the parameter -{name} needs a value (-{name}:<value>).")
        out["-" + key] = value if colon else True
    return out


def _wb_rules(sub: str, switches: dict[str, str | bool]) -> None:
    if "-showsummary" in switches and len(switches) > 1:
        raise _wb_error("-showsummary cannot be combined with other parameters.")
    if "-machine" in switches and "-backuptarget" not in switches:
        raise _wb_error("-machine must be used with -backupTarget.")
    needed = {
        "start systemstaterecovery": ["-version"],
        "start recovery": ["-version", "-items", "-itemtype"],
        "start systemstatebackup": ["-backuptarget"],
    }.get(sub, [])
    if "-showsummary" not in switches:
        for name in needed:
            if name not in switches:
                raise _wb_error(f"the parameter {name} is required for 'wbadmin {sub}'.")
    version = switches.get("-version")
    if isinstance(version, str) and not _WB_VERSION.match(version):
        raise _wb_error(
            f"-version:{version} is not a version identifier: use MM/DD/YYYY-HH:MM as "
            "'wbadmin get versions' prints it."
        )


# --- Exchange setup ----------------------------------------------------------------------

_MODES = {"install", "uninstall", "upgrade", "recoverserver"}
_LICENSE_OLD = "iacceptexchangeserverlicenseterms"
_LICENSE_NEW = {
    "iacceptexchangeserverlicenseterms_diagnosticdataon",
    "iacceptexchangeserverlicenseterms_diagnosticdataoff",
}
# Exchange 2016 CU22 and Exchange 2019 CU11 (September 2021) changed the license switch.
_NEW_LICENSE_FROM = {2016: 22, 2019: 11}


@cache
def _setup_switches() -> dict[str, str]:
    """Every switch name and short form of 2016/2019 and 2013 → its canonical name."""
    data = _tools()["exchange_setup"]
    keys = list(data["exchange_2016_2019"]["primary_switches"])
    keys += list(data["exchange_2016_2019"]["optional_switches"])
    keys += data["exchange_2013"]["switches_seen"]
    out: dict[str, str] = {}
    for key in keys:
        names = [n.lower() for n in re.findall(r"/(\w+)", key)]
        names += [n.lower() for n in re.findall(r"\((?:or\s+)?/?(\w+):?", key)]
        names += [n.lower() for n in re.findall(r"[(,]\s*/?(\w+)\s*[,)]", key)]
        for n in names:
            out.setdefault(n, names[0])
    out.update({"m": "mode", "r": "roles", "role": "roles", "dc": "domaincontroller"})
    out.update({"t": "targetdir", "s": "sourcedir", "u": "updatesdir", "on": "organizationname"})
    return out


def _setup_error(message: str) -> ToolUsageError:
    return ToolUsageError(message, 1)


def _setup(argv: list[str], host: _Host) -> ToolCall:
    version = host.exchange_version
    if version in (2000, 2003):
        return _setup_legacy(argv)
    if version is None or version < 2013:
        return ToolCall("setup", None, {}, list(argv))  # 2007 / 2010 Setup.com: not verified
    switches = _setup_parse(argv)
    _setup_license(version, host.exchange_cu, switches)
    mode = switches.get("mode")
    if isinstance(mode, str) and mode.lower() not in _MODES:
        raise _setup_error(f"The value '{mode}' for /Mode is not valid.")
    return ToolCall("setup", mode if isinstance(mode, str) else "install", switches, [])


def _setup_legacy(argv: list[str]) -> ToolCall:
    for arg in argv:
        if arg.lower() not in ("/disasterrecovery", "/?"):
            raise _setup_error(f"The switch '{arg}' is not valid for Exchange 2000/2003 setup.")
    return ToolCall("setup", "disasterrecovery" if argv else None, {}, [])


def _setup_parse(argv: list[str]) -> dict[str, str | bool]:
    known = _setup_switches()
    switches: dict[str, str | bool] = {}
    for arg in argv:
        if not arg.startswith("/"):
            raise _setup_error(f"The argument '{arg}' is not a setup switch.")
        name, colon, value = arg[1:].partition(":")
        low = name.lower()
        if low in (_LICENSE_OLD, *_LICENSE_NEW):
            switches[low] = True
            continue
        if low not in known:
            raise _setup_error(f"The switch '/{name}' is not a valid setup switch.")
        switches[known[low]] = value if colon else True
    return switches


def _setup_license(version: int, cu: int | None, switches: dict[str, str | bool]) -> None:
    new_from = _NEW_LICENSE_FROM.get(version)
    new_form = new_from is not None and (cu is None or cu >= new_from)
    has_old = _LICENSE_OLD in switches
    has_new = bool(_LICENSE_NEW & set(switches))
    where = f"Exchange {version}" + (f" CU{cu}" if cu is not None else " (latest CU)")
    if new_form and has_old:
        raise _setup_error(
            f"/IAcceptExchangeServerLicenseTerms is no longer available on {where}: use "
            "/IAcceptExchangeServerLicenseTerms_DiagnosticDataON or _DiagnosticDataOFF."
        )
    if not new_form and has_new:
        raise _setup_error(
            f"The switch /IAcceptExchangeServerLicenseTerms_DiagnosticData... does not exist "
            f"on {where}: use /IAcceptExchangeServerLicenseTerms."
        )
    if not (has_old or has_new):
        raise _setup_error(
            "The Exchange Server license terms must be accepted in an unattended setup: add "
            + (
                "/IAcceptExchangeServerLicenseTerms_DiagnosticDataON or _DiagnosticDataOFF."
                if new_form
                else "/IAcceptExchangeServerLicenseTerms."
            )
        )


# --- bcdedit, netdom, diskshadow, certutil, ntdsutil ---------------------------------------


def _bcdedit(argv: list[str], host: _Host) -> ToolCall:
    commands = {c.lower() for c in _tools()["bcdedit"]["commands"]}
    if not argv or argv[0].lower() not in commands:
        shown = argv[0] if argv else ""
        raise ToolUsageError(f"The parameter is incorrect. ('{shown}' is not a bcdedit command)", 1)
    return ToolCall("bcdedit", argv[0].lower(), {}, argv[1:])


def _netdom(argv: list[str], host: _Host) -> ToolCall:
    syntax = _tools()["netdom"]["syntax"]
    commands = {c.strip().lower() for c in syntax[syntax.index("[") + 1 : -1].split("|")}
    if not argv or argv[0].lower() not in commands:
        raise ToolUsageError("The syntax of this command is: NETDOM [ ADD | ... | RESETPWD ]", 1)
    return ToolCall("netdom", argv[0].lower(), {}, argv[1:])


def _diskshadow(argv: list[str], host: _Host) -> ToolCall:
    if not argv:
        return ToolCall("diskshadow", None, {}, [])
    if argv[0].lower() not in ("-s", "/s") or len(argv) != 2:
        raise ToolUsageError(f"The parameter '{argv[0]}' is not valid for diskshadow.", 1)
    return ToolCall("diskshadow", "script", {"-s": argv[1]}, [])


_CERTUTIL_OPTIONS = {
    "f", "user", "enterprise", "service", "grouppolicy", "silent", "split", "dc", "config", "p",
    "v", "t",
}  # fmt: skip
_HASH_ALGORITHMS = {"md2", "md4", "md5", "sha1", "sha256", "sha384", "sha512"}


def _certutil(argv: list[str], host: _Host) -> ToolCall:
    """Options before the verb; the data's verbs and any other verb (unverified) pass."""
    verb: str | None = None
    operands: list[str] = []
    switches: dict[str, str | bool] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        name = arg[1:].lower() if arg[:1] in "-/" else None
        if name is None:
            operands.append(arg)
        elif name in _CERTUTIL_OPTIONS and verb is None:
            takes = name in ("dc", "config", "p", "t")
            switches["-" + name] = argv[i] if takes and i < len(argv) else True
            i += 1 if takes else 0
        elif verb is None:
            verb = name  # a verb outside the data is accepted unverified
        else:
            raise ToolUsageError(f"CertUtil: Unknown arg: {arg}", 87)
    if verb == "hashfile" and len(operands) > 1 and operands[1].lower() not in _HASH_ALGORITHMS:
        raise ToolUsageError(f"CertUtil: -hashfile: unknown hash algorithm {operands[1]}", 87)
    if verb is not None:
        _certutil_ca_verb("-" + verb, switches, operands)
    return ToolCall("certutil", "-" + verb if verb else None, switches, operands)


def _certutil_ca_verb(verb: str, switches: dict[str, str | bool], operands: list[str]) -> None:
    """A CA backup / restore verb's options and operand count, as its section of certutil.md
    prints them (tools.json ``ca_backup_restore_verbs``); other verbs are left as they are."""
    spec = _tools()["certutil"].get("ca_backup_restore_verbs", {}).get(verb)
    if spec is None:
        return
    allowed = {"-" + o for o in spec["options"]}
    for option in switches:
        if option not in allowed:
            message = f"CertUtil: {verb}: option {option} is not valid: {spec['syntax']}"
            raise ToolUsageError(message, 87)
    low, high = spec["operands"]
    if not low <= len(operands) <= high:
        raise ToolUsageError(f"CertUtil: {verb}: expected {spec['syntax']}", 87)


_NT_OLD_WINDOWS = {"2000", "2003", "2003R2"}
# Top-level commands that act at once; every other one opens a menu of its own.
_NT_IMMEDIATE = {"activate", "popups", "help", "quit", "list", "ldap", "ssl", "change", "?"}
_NT_TOKEN = re.compile(r'"[^"]*"|\S+')


def _ntdsutil(argv: list[str], host: _Host) -> ToolCall:
    """Each argument is one command typed at ntdsutil's current menu (tools.json ntdsutil):
    the authoritative restore menu is checked everywhere, the top-level menu from 2008 on."""
    data = _tools()["ntdsutil"]
    old = host.windows is None or normalize_windows(host.windows) in _NT_OLD_WINDOWS
    menu = "top"
    for arg in argv:
        if menu == "other":
            break  # a menu the data does not describe (its own submenus included)
        words = _NT_TOKEN.findall(arg)
        lowered = [w.lower() for w in words]
        if lowered[:1] == ["popups"] and lowered[1:] not in (["on"], ["off"]):
            raise _nt_error(arg)
        if _nt_match(data["menu_navigation"]["commands"], words):
            menu = "top" if menu != "top" and _nt_is(words, "quit") else menu
            continue
        menu = _nt_step(menu, words, arg, old, data)
    return ToolCall("ntdsutil", None, {}, list(argv))


def _nt_step(menu: str, words: list[str], arg: str, old: bool, data: dict[str, Any]) -> str:
    """The menu after ``arg`` is typed at ``menu`` (``"other"``: a menu the data does not list)."""
    if menu == "top":
        if _nt_match(["authoritative restore"], words):
            return "authoritative restore"
        if old:
            return "top"  # no 2000 / 2003 top-level list was found: not checked
        forms = [
            f.strip() for f in data["top_level_2008"]["syntax"].split("[", 1)[1][:-1].split("|")
        ]
        if not _nt_match(forms, words):
            raise _nt_error(arg)
        return "top" if _nt_first(forms, words) in _NT_IMMEDIATE else "other"
    authoritative = data["authoritative_restore"]
    forms = authoritative["commands"] + authoritative["accepted_unverified"]["commands"]
    if menu == "authoritative restore" and not _nt_match(forms, words):
        raise _nt_error(arg)
    return menu


def _nt_error(arg: str) -> ToolUsageError:
    return ToolUsageError(f'Error parsing Input - Invalid Syntax: "{arg}"', 1)


def _nt_is(words: list[str], command: str) -> bool:
    return _nt_match([command], words)


def _nt_first(forms: list[str], words: list[str]) -> str:
    matched = next(f for f in forms if _nt_form(f, words))
    return matched.split()[0].lower()


def _nt_match(forms: list[str], words: list[str]) -> bool:
    return any(_nt_form(form, words) for form in forms)


def _nt_form(form: str, words: list[str]) -> bool:
    """Whether ``words`` type ``form``: each keyword or a prefix of it ("ac i ntds"), ``%s``
    one word (a quoted one may hold spaces), ``%d`` a number."""
    parts = form.replace("(s)", "s").split()
    if len(parts) != len(words):
        return False
    for part, word in zip(parts, words, strict=True):
        if part.startswith("%d"):
            if not word.isdigit():
                return False
        elif not part.startswith("%") and not part.lower().startswith(word.lower()):
            return False
    return True


_PARSERS: dict[str, Callable[[list[str], _Host], ToolCall]] = {
    "eseutil": _eseutil,
    "robocopy": _robocopy,
    "wbadmin": _wbadmin,
    "setup": _setup,
    "bcdedit": _bcdedit,
    "netdom": _netdom,
    "diskshadow": _diskshadow,
    "certutil": _certutil,
    "ntdsutil": _ntdsutil,
}

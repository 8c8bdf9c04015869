"""Parsers for ``eseutil /mh`` (database header) and ``eseutil /ml`` (log integrity) output.

The formats are those of the ESE source (``dbdump.cxx``, ``logdump.cxx``, ``eseutil.cxx``)
as quoted in research/exchange-and-winrm.md §1.4–§1.5. Exchange 2000/2003 print the
``Log Required`` range in decimal only (``Log Required: 44-46``); 2007 and later add the hex
pair (``1-5 (0x1-0x5)``) and, from about 2013, ``[Min. Req. Pre-Redo: …]``. The decimal pair
is always present and is what we trust; the hex pair, when present, must agree with it, or
the output is treated as garbled.

A restore decision is only as good as the header it reads, so a missing field is an error
that names the field (ToolOutputError), never a silent default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from dr.errors import ToolOutputError
from dr.exchange.rules import Gap

StateKind = Literal["clean", "dirty", "other"]

_STATUS_OK = re.compile(r"^\s*Operation completed successfully in\s+(?P<secs>[\d.]+)\s+seconds\.")
_STATUS_WARN = re.compile(
    r"^\s*Operation completed successfully with\s+(?P<code>-?\d+)\s+\((?P<what>[^)]*)\)"
    r"\s+after\s+(?P<secs>[\d.]+)\s+seconds\."
)
_STATUS_FAIL = re.compile(
    r"^\s*Operation terminated with error\s+(?P<code>-?\d+)\s+\((?P<what>[^)]*)\)"
    r"\s+after\s+(?P<secs>[\d.]+)\s+seconds\."
)
_FIELD = re.compile(r"^\s*(?P<label>[A-Za-z][A-Za-z .()]*?):\s?(?P<value>.*?)\s*$")
_LOG_REQUIRED = re.compile(
    r"^(?P<lo>\d+)-(?P<hi>\d+)"
    r"(?:\s*\(0x(?P<lohex>[0-9A-Fa-f]+)-0x(?P<hihex>[0-9A-Fa-f]+)\))?"
    r"(?:\s*\[Min\. Req\. Pre-Redo:\s*(?P<preredo>\d+)(?:\s*\(0x[0-9A-Fa-f]+\))?\])?\s*$"
)
_SECTION = re.compile(
    r"^\s*(?P<when>Previous|Current)\s+(?P<kind>Full|Incremental|Copy|Differential|"
    r"Shadow copy)\s+Backup:\s*$",
    re.IGNORECASE,
)
_LOG_GEN = re.compile(r"^(?P<lo>\d+)-(?P<hi>\d+)")
_MARK_TIME = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}")


@dataclass(frozen=True)
class Status:
    """The trailing line: success, success with a warning, or a JET error."""

    ok: bool
    code: int
    name: str | None
    text: str


@dataclass(frozen=True)
class BackupMark:
    """A ``Previous Full Backup:`` (etc.) section of the header: its log generations and time."""

    log_first: int
    log_last: int
    time_text: str | None


@dataclass(frozen=True)
class DatabaseHeader:
    """What ``eseutil /mh`` says about a database file."""

    state: StateKind
    state_text: str
    log_required: tuple[int, int]
    db_signature: str
    log_signature: str
    page_size: int | None
    status: Status
    min_required_pre_redo: int | None = None
    repair_count: int | None = None
    backups: tuple[tuple[str, BackupMark], ...] = ()

    @property
    def needs_logs(self) -> bool:
        """True when soft recovery must replay logs before the database can mount."""
        return self.log_required != (0, 0)


def normalise_exit_code(rc: int) -> int:
    """An exit code as eseutil meant it: WinRS may return -501 as 4294966795."""
    if not -(2**31) <= rc < 2**32:
        raise ToolOutputError(f"exit code {rc} does not fit 32 bits")
    return rc - 2**32 if rc >= 2**31 else rc


def parse_status(lines: list[str], tool: str) -> Status:
    """The last ``Operation …`` line; ToolOutputError if the output was cut off before it."""
    for line in reversed(lines):
        for pattern, ok in ((_STATUS_OK, True), (_STATUS_WARN, True), (_STATUS_FAIL, False)):
            match = pattern.match(line)
            if match:
                return _status(match, ok, line)
    raise ToolOutputError(
        f"{tool} output has no 'Operation completed' or 'Operation terminated' line",
        hint="the output was cut short or is not eseutil output; run the command again",
    )


def _status(match: re.Match[str], ok: bool, line: str) -> Status:
    groups = match.groupdict()
    code = int(groups["code"]) if groups.get("code") else 0
    what = groups.get("what")
    name = what.split(",")[0].strip() if what else None
    return Status(ok=ok, code=code, name=name, text=line.strip())


# --------------------------------------------------------------------------- /mh


def _normalise_state(text: str) -> StateKind:
    folded = " ".join(text.casefold().split())
    if folded in ("clean shutdown", "consistent"):
        return "clean"
    if folded in ("dirty shutdown", "inconsistent"):
        return "dirty"
    return "other"


def _fields(lines: list[str]) -> tuple[dict[str, str], dict[str, BackupMark]]:
    """Header fields (first occurrence wins) and the backup sections, by their title."""
    fields: dict[str, str] = {}
    sections: dict[str, BackupMark] = {}
    section: str | None = None
    for line in lines:
        heading = _SECTION.match(line)
        if heading:
            section = f"{heading['when']} {heading['kind']}".lower()
            continue
        match = _FIELD.match(line)
        if not match:
            section = None if not line.strip() else section
            continue
        label, value = match["label"].strip(), match["value"]
        if section is not None:
            _section_field(sections, section, label, value)
        else:
            fields.setdefault(label, value)
    return fields, sections


def _section_field(sections: dict[str, BackupMark], section: str, label: str, value: str) -> None:
    if label == "Log Gen":
        gen = _LOG_GEN.match(value)
        if gen:
            sections[section] = BackupMark(int(gen["lo"]), int(gen["hi"]), None)
    elif label == "Mark" and section in sections and _MARK_TIME.match(value):
        mark = sections[section]
        sections[section] = BackupMark(mark.log_first, mark.log_last, value)


def _require(fields: dict[str, str], label: str) -> str:
    value = fields.get(label)
    if value is None or not value.strip():
        raise ToolOutputError(
            f"eseutil /mh output has no '{label}:' field",
            hint="run eseutil /mh against the .edb file (not a log or checkpoint) and retry",
            details={"field": label},
        )
    return value.strip()


def parse_log_required(value: str) -> tuple[tuple[int, int], int | None]:
    """``44-46`` or ``1-5 (0x1-0x5) [Min. Req. Pre-Redo: 1 (0x1)]`` → ((lo, hi), pre-redo)."""
    match = _LOG_REQUIRED.match(value.strip())
    if not match:
        raise ToolOutputError(
            f"eseutil /mh 'Log Required:' value {value.strip()!r} is not a generation range",
            details={"field": "Log Required"},
        )
    lo, hi = int(match["lo"]), int(match["hi"])
    if match["lohex"] is not None and (int(match["lohex"], 16), int(match["hihex"], 16)) != (
        lo,
        hi,
    ):
        raise ToolOutputError(
            f"eseutil /mh 'Log Required:' decimal {lo}-{hi} disagrees with hex "
            f"0x{match['lohex']}-0x{match['hihex']}; the output is garbled",
            details={"field": "Log Required"},
        )
    if lo > hi:
        raise ToolOutputError(f"eseutil /mh 'Log Required:' range {lo}-{hi} runs backwards")
    preredo = int(match["preredo"]) if match["preredo"] is not None else None
    return (lo, hi), preredo


def _optional_int(fields: dict[str, str], label: str) -> int | None:
    value = fields.get(label, "").strip()
    number = re.match(r"^\d+", value)
    return int(number.group()) if number else None


def parse_mh(text: str) -> DatabaseHeader:
    """Parse ``eseutil /mh <db.edb>`` output; ToolOutputError naming what is missing."""
    lines = text.splitlines()
    status = parse_status(lines, "eseutil /mh")
    if not status.ok:
        raise ToolOutputError(
            f"eseutil /mh failed: {status.text}",
            hint="the header could not be read; check the path and that the database is dismounted",
            details={"jet_error": status.code, "jet_name": status.name},
        )
    fields, sections = _fields(lines)
    file_type = fields.get("File Type", "Database").strip()
    if file_type.casefold() != "database":
        raise ToolOutputError(f"eseutil /mh dumped a {file_type!r} file, not a database")
    state_text = _require(fields, "State")
    log_required, preredo = parse_log_required(_require(fields, "Log Required"))
    return DatabaseHeader(
        state=_normalise_state(state_text),
        state_text=state_text,
        log_required=log_required,
        db_signature=" ".join(_require(fields, "DB Signature").split()),
        log_signature=" ".join(_require(fields, "Log Signature").split()),
        page_size=_optional_int(fields, "cbDbPage"),
        status=status,
        min_required_pre_redo=preredo,
        repair_count=_optional_int(fields, "Repair Count"),
        backups=tuple(sorted(sections.items())),
    )


# --------------------------------------------------------------------------- /ml

_LOG_FILE = re.compile(r"^\s*Log file:\s*(?P<name>.+?)(?P<ok>\s+-\s+OK)?\s*$")
_MISSING_ONE = re.compile(
    r"^\s*Missing log file:\s*(?P<prefix>E[0-9A-F]{2})(?P<gen>[0-9A-F]+)\.log", re.I
)
_MISSING_MANY = re.compile(
    r"^\s*Missing log files:\s*(?P<prefix>E[0-9A-F]{2})\{\s*(?P<first>[0-9A-F]+)\s*-\s*"
    r"(?P<last>[0-9A-F]+)\s*\}\.log",
    re.I,
)
_ERROR = re.compile(r"^\s*ERROR:\s*(?P<text>.+?)\s*$")
_CORRUPTION = re.compile(r"^\s*CORRUPTION DETECTED in log file:\s*(?P<name>.+?)\s*$", re.I)
_PASSED = re.compile(r"^\s*Integrity check passed for log file:\s*(?P<name>.+?)\s*$", re.I)
_BASE = re.compile(r"^\s*Base name:\s*(?P<base>\S+)\s*$")


@dataclass(frozen=True)
class LogFileResult:
    """One ``Log file:`` line and the ERROR lines printed under it."""

    name: str
    ok: bool
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogCheck:
    """What ``eseutil /ml`` found in a log stream (or a single log file)."""

    base_name: str | None
    files: tuple[LogFileResult, ...]
    missing: tuple[Gap, ...]
    errors: tuple[str, ...]
    corrupted: tuple[str, ...]
    no_damage_reported: bool
    status: Status

    @property
    def ok(self) -> bool:
        """True only when eseutil succeeded and reported nothing missing, damaged or foreign."""
        return (
            self.status.ok
            and not self.missing
            and not self.errors
            and not self.corrupted
            and all(f.ok for f in self.files)
        )


class _MlState:
    def __init__(self) -> None:
        self.base: str | None = None
        self.files: list[LogFileResult] = []
        self.missing: list[Gap] = []
        self.errors: list[str] = []
        self.corrupted: list[str] = []
        self.no_damage = False
        self.recognised = 0

    def add_error(self, text: str) -> None:
        self.errors.append(text)
        if self.files:
            last = self.files[-1]
            self.files[-1] = LogFileResult(last.name, False, (*last.errors, text))


def _missing(match: re.Match[str], first: str, last: str) -> Gap:
    try:
        return Gap(int(first, 16), int(last, 16), match["prefix"].upper())
    except ValueError as exc:  # pragma: no cover - the regex admits only hex digits
        raise ToolOutputError(f"eseutil /ml: unreadable generation in {match.group(0)!r}") from exc


def _ml_line(line: str, state: _MlState) -> None:
    if match := _BASE.match(line):
        state.base = match["base"].upper()
    elif match := _MISSING_MANY.match(line):
        state.missing.append(_missing(match, match["first"], match["last"]))
    elif match := _MISSING_ONE.match(line):
        state.missing.append(_missing(match, match["gen"], match["gen"]))
    elif match := _LOG_FILE.match(line):
        state.files.append(LogFileResult(match["name"], bool(match["ok"])))
    elif match := _ERROR.match(line):
        state.add_error(match["text"])
    elif match := _CORRUPTION.match(line):
        state.corrupted.append(match["name"])
    elif match := _PASSED.match(line):
        state.files.append(LogFileResult(match["name"], True))
    elif line.strip() == "No damaged log files were found.":
        state.no_damage = True
    else:
        return
    state.recognised += 1


def parse_ml(text: str) -> LogCheck:
    """Parse ``eseutil /ml Enn`` (a stream) or ``eseutil /ml <file>`` output."""
    lines = text.splitlines()
    status = parse_status(lines, "eseutil /ml")
    state = _MlState()
    for line in lines:
        _ml_line(line, state)
    if not state.recognised and status.ok:
        raise ToolOutputError(
            "eseutil /ml output names no log file and no result",
            hint="run eseutil /ml with the log prefix (Enn) in the log folder",
        )
    return LogCheck(
        base_name=state.base,
        files=tuple(state.files),
        missing=tuple(state.missing),
        errors=tuple(state.errors),
        corrupted=tuple(state.corrupted),
        no_damage_reported=state.no_damage,
        status=status,
    )

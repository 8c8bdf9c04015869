"""Why an attempt failed, in the words a responder needs, and whether a retry can help.

A retry helps when the cause can go away by itself: a host that restarts, a network that
drops a connection, a WinRM service that answers 5xx while it is busy, a lock another
process holds for a moment. It cannot help when the step is wrong for where it runs or the
configuration lacks something; retrying then only delays the responder by the backoff
(two minutes, twice, for a fetch) and, for refused credentials, may lock the account.

:data:`RULES` is the one table of failures no retry can fix. The executor asks
:func:`classify` after every failed attempt; a match stops the step at its first attempt
(paused, or failed as its ``on_failure`` says) with the rule's reason and what to do. Every
other failure keeps the retries its runbook gives it. Where each text comes from:

* PowerShell's parameter binder: ``ParameterBindingException`` and its message "A parameter
  cannot be found that matches parameter name"
  (https://learn.microsoft.com/dotnet/api/system.management.automation.parameterbindingexception);
  an unknown command is ``CommandNotFoundException``, "The term 'X' is not recognized as the
  name of a cmdlet, function, script file, or operable program"
  (https://learn.microsoft.com/dotnet/api/system.management.automation.commandnotfoundexception);
* cmd.exe: "'X' is not recognized as an internal or external command, operable program or
  batch file." (errorlevel 9009;
  https://learn.microsoft.com/windows-server/administration/windows-commands/cmd);
* robocopy: exit codes above 8 are failures
  (https://learn.microsoft.com/windows-server/administration/windows-commands/robocopy);
  16 is its "serious error": nothing was copied, a usage error or no access to the source or
  destination. Its usage errors print "ERROR : Invalid Parameter #N : ..."; the step
  library's cmd wrappers pass 16 through (``if errorlevel 16 (exit /b 16)``);
* a full disk: Windows' ERROR_DISK_FULL (112, "There is not enough space on the disk.",
  https://learn.microsoft.com/windows/win32/debug/system-error-codes--0-499-), as robocopy
  prints it ("ERROR 112 (0x00000070) ...") and PowerShell's file cmdlets report it, and ESE's
  JET_errDiskFull (-1808) and JET_errLogDiskFull (-529) from eseutil (KB 266361, KB 266367):
  the space does not come back by itself within a retry's backoff;
* the POSIX shell: exit status 127 when a command is not found, 126 when it is found but
  cannot be executed (POSIX.1-2017, Shell Command Language, 2.8.2 "Exit Status for
  Commands", https://pubs.opengroup.org/onlinepubs/9699919799/utilities/V3_chap02.html);
* dr's own commands (the fetch and check steps run ``dr store ...``): an error line
  ``error E<code> ...`` whose code is a bad input (E2xxx: a parameter, a missing file, no
  ``staging:`` entry for a host's folder), a restore that cannot be done as asked (E3xxx),
  a missing workspace (E5xxx), a wrong key or passphrase (E6200), damaged data (E6300), or
  the lab refusing what was asked (E77xx). A locked repository (E6100) is transient and keeps
  its retries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import AuthenticationError, EngineError, TransportConfigError

__all__ = ["RULES", "Failure", "Rule", "Verdict", "classify", "reason_lines"]

# How much of each stream is searched, from its end (errors are printed last).
SCAN_BYTES = 64 * 1024
# A reason line longer than this is cut: a one-line JSON blob is not a reason.
LINE_CHARS = 240
REASON_LINES = 5

# dr's error codes (dr/errors.py) that no retry changes; the engine never imports dr.
_DR_PERMANENT = r"E(?:2\d{3}|3\d{3}|5\d{3}|6200|6300|6400|77\d\d)"


@dataclass(frozen=True)
class Rule:
    """One kind of failure no retry can fix: how it is recognised, what it means, what to do.

    A rule matches an engine error of one of ``errors``, or an attempt's output by
    ``pattern`` or its exit code by ``exit_codes``; it applies only to steps of ``shells``
    (when given) whose script runs ``program`` (when given): an exit code means something
    only for the program that returned it."""

    name: str
    why: str
    todo: str
    errors: tuple[type[EngineError], ...] = ()
    pattern: re.Pattern[str] | None = None
    exit_codes: frozenset[int] = frozenset()
    shells: frozenset[str] = frozenset()
    program: re.Pattern[str] | None = None

    def match(self, exit_code: int | None, text: str, shell: str, script: str) -> str | None:
        """What shows that a command's failure is this rule's (its exit code, the line it
        printed), or None."""
        if self.shells and shell not in self.shells:
            return None
        if exit_code in self.exit_codes and (self.program is None or self.program.search(script)):
            return f"exit code {exit_code}"
        found = self.pattern.search(text) if self.pattern is not None else None
        return _cut(found.group(0).strip()) if found else None


RULES: tuple[Rule, ...] = (
    Rule(
        "configuration",
        "the host's transport is not configured or its configuration is invalid",
        "map the host in the workspace config.yaml `hosts:` (or the --hosts file), then "
        "retry the step; `dr run start --check PLAN` lists what a plan needs",
        errors=(TransportConfigError,),
    ),
    Rule(
        "credentials",
        "the host refused the credentials; another attempt sends the same ones (and may "
        "lock the account)",
        "set the right user and password for the host (docs/transports.md), then retry",
        errors=(AuthenticationError,),
    ),
    Rule(
        "dr refused its input",
        "a dr command refused its input or the workspace configuration",
        "do what its error line says (e.g. add the folder to `staging:` in the workspace "
        "config.yaml), then retry the step",
        pattern=re.compile(rf"(?m)^\s*error {_DR_PERMANENT}\b.*$"),
    ),
    Rule(
        "parameter refused",
        "the command refused a parameter: the step's command does not fit this host's "
        "version of the cmdlet",
        "check the step's platform in the inventory (`dr inventory probe`) or the step "
        "library variant, make the plan again, or do the step by hand and mark it done",
        pattern=re.compile(
            r"(?m)^.*(?:A parameter cannot be found that matches parameter name"
            r"|ParameterBinding\w*Exception).*$"
        ),
    ),
    Rule(
        "command not found",
        "the host does not have a command the step runs",
        "install it, or correct the host's platform in the inventory and make the plan "
        "again; or do the step by hand and mark it done",
        pattern=re.compile(
            r"(?m)^.*is not recognized as (?:an internal or external command"
            r"|the name of a cmdlet).*$"
        ),
    ),
    Rule(
        "disk full",
        "the drive the step writes to is full; another attempt finds it as full",
        "free space on that drive (the step's output names the file; `Get-PSDrive` shows "
        "what is free), then retry the step",
        pattern=re.compile(
            r"(?m)^.*(?:There is not enough space on the disk|ERROR 112 \(0x00000070\)"
            r"|JET_errDiskFull|JET_errLogDiskFull).*$"
        ),
        shells=frozenset({"cmd", "powershell"}),
    ),
    Rule(
        "robocopy serious error",
        "robocopy copied nothing: a usage error, or no access to the source or destination",
        "read robocopy's output (`dr run log RUN STEP`), fix the paths or the rights, then "
        "retry the step",
        pattern=re.compile(r"(?m)^\s*ERROR : (?:Invalid Parameter #\d+|No Destination).*$"),
        exit_codes=frozenset({16}),
        shells=frozenset({"cmd", "powershell"}),
        program=re.compile(r"(?i)\brobocopy\b"),
    ),
    Rule(
        "missing local file",
        "a program or file the step needs is missing on the orchestrator",
        "install the program or restore the file (the step's output names it), then retry",
        pattern=re.compile(r"(?m)^.*: (?:No such file or directory|not found)$"),
        exit_codes=frozenset({126, 127}),
        shells=frozenset({"posix"}),
    ),
)


@dataclass(frozen=True)
class Verdict:
    """A rule that matched, with the line of output that shows it (when there is one)."""

    rule: Rule
    evidence: str = ""

    def text(self) -> str:
        """One clause for the step's message: why it was not retried, and what to do."""
        seen = f" ({self.evidence})" if self.evidence else ""
        return f"not retried: {self.rule.why}{seen} — {self.rule.todo}"


def classify(
    *,
    error: EngineError | None = None,
    exit_code: int | None = None,
    output: Sequence[bytes] = (),
    shell: str = "",
    script: str = "",
) -> Verdict | None:
    """The first rule of :data:`RULES` that the failure matches, or None: retry it."""
    if error is not None:
        for rule in RULES:
            if rule.errors and isinstance(error, rule.errors):
                return Verdict(rule, _cut(error.message))
        return None
    text = "\n".join(_tail_text(data) for data in output)
    for rule in RULES:
        evidence = rule.match(exit_code, text, shell, script)
        if evidence is not None:
            return Verdict(rule, evidence)
    return None


def reason_lines(stderr: bytes, stdout: bytes, limit: int = REASON_LINES) -> list[str]:
    """The last ``limit`` non-empty lines of stderr, else of stdout: what the command said
    last, which is nearly always why it stopped. The bytes are already redacted."""
    for data in (stderr, stdout):
        lines = [line.rstrip() for line in _tail_text(data).splitlines() if line.strip()]
        if lines:
            return [_cut(line) for line in lines[-limit:]]
    return []


@dataclass(frozen=True)
class Failure:
    """One failed attempt, as the responder is told of it at once.

    ``attempts`` is the number of attempts the step gets in this run of the engine;
    ``retry_in`` the seconds before the next (None: none follows)."""

    step_id: str
    attempt: int
    attempts: int
    summary: str
    lines: tuple[str, ...] = ()
    retry_in: float | None = None
    verdict: Verdict | None = None


def _tail_text(data: bytes) -> str:
    return data[-SCAN_BYTES:].decode("utf-8", errors="replace")


def _cut(line: str) -> str:
    return line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 1] + "…"

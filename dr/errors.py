"""The errors dr raises, each with a stable code that also appears in messages and evidence.

Every error a user can cause or meet is a :class:`DrError`. The CLI prints it as one line
(``error E2101: <where>: <what> — <hint>``) and exits with the class's exit code; it never
shows a traceback for these. Codes are stable: they are documented in ``docs/errors.md``
and may be matched by scripts.

The tree (code, exit code)::

    DrError                              1000  1   something went wrong in dr
    ├── InputError                       2000  2   bad input: a file, a record or a parameter
    │   ├── InventoryError               2100  2   the estate file is invalid (file:line:col field)
    │   ├── ManifestError                2200  2   an import manifest is invalid (file:line field)
    │   ├── ParameterError               2300  2   a command-line value is invalid
    │   ├── PolicyError                  2400  2   a change a policy forbids (e.g. encryption)
    │   ├── ToolOutputError              2500  2   tool output (eseutil, wbadmin) cannot be parsed
    │   ├── ESEHeaderError               2700  2   an ESE file header is unreadable (field, offset)
    │   └── PreflightError               2800  2   what a plan's steps need is not configured
    ├── NotFoundError                    2600  2   a named thing does not exist
    ├── NotRecoverable                   3000  3   the restore cannot be done as asked (planner)
    │   ├── LogGap                       3110  3   log generations missing before the target
    │   │   └── ForeignLog               3115  3   a log that cannot be replayed before the target
    │   ├── NoFullBefore                 3120  3   no full backup at or before the target
    │   ├── ArtifactExpired              3130  3   what the target needs was expired by retention
    │   ├── MissingSecret                3140  3   a needed secret has no recorded location
    │   ├── NameMismatch                 3150  3   recovery forest names differ from the source
    │   ├── VersionMismatch              3160  3   Exchange version differs from the source
    │   └── WrongDatabase                3170  3   mail-level items go only into their database
    ├── RuleViolation                    4000  4   a backup run breaks an Exchange backup rule
    │   ├── CircularLoggingViolation     4100  4   incremental / differential with circular logging
    │   ├── ChainViolation               4200  4   no full base, copy used as a base, ...
    │   └── LogSequenceViolation         4300  4   a missing generation or a foreign log signature
    ├── WorkspaceError                   5000  5   the workspace or catalog is missing or unusable
    │   └── CatalogError                 5100  5   the catalog cannot be read or written
    ├── StoreError                       6000  6   the artifact repository
    │   ├── RepositoryLocked             6100  6   another process holds the repository lock
    │   ├── KeyMismatch                  6200  6   wrong passphrase, key file or repository
    │   ├── IntegrityError               6300  6   damaged or missing data in the repository
    │   └── NotInRepository              6400  6   a run another tool took: a person copies it
    ├── RunError                         7000  7   a run cannot start or continue
    │   └── DrillBusy                    7010  75  another `dr drill tick` holds the drill lock
    ├── LabError                         7700  2   the built-in lab cannot do what was asked
    │   ├── TruthMismatch                7710  3   a lab database differs from the ground truth
    │   └── ScenarioNeedsLab             7720  2   a scenario drill runs only in the lab
    └── EvidenceError                    7500  7   evidence cannot be made, read or kept
        ├── EvidenceKeyMissing           7510  7   no evidence signing key (dr evidence keygen)
        └── EvidenceInvalid              7520  7   a record fails verification

The engine has its own tree rooted in ``engine.errors.EngineError`` (it never imports dr);
the CLI maps both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as the input allows."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    field: str | None = None

    def where(self) -> str:
        parts = []
        if self.file:
            loc = self.file
            if self.line is not None:
                loc += f":{self.line}"
                if self.column is not None:
                    loc += f":{self.column}"
            parts.append(loc)
        if self.field:
            parts.append(self.field)
        return ": ".join(parts)

    def render(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
        }


class DrError(Exception):
    """Base of every error dr reports to a user."""

    code: ClassVar[int] = 1000
    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        problems: list[Problem] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.problems = list(problems or [])
        self.details = dict(details or {})

    @property
    def ident(self) -> str:
        return f"E{self.code}"

    def lines(self) -> list[str]:
        """The error as the CLI prints it: one line per problem, or one line."""
        if self.problems:
            return [f"{self.ident} {p.render()}" for p in self.problems]
        text = f"{self.ident} {self.message}"
        if self.hint:
            text += f" — {self.hint}"
        return [text]

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": type(self).__name__,
            "code": self.ident,
            "exit_code": self.exit_code,
            "message": self.message,
            "hint": self.hint,
            "problems": [p.to_dict() for p in self.problems],
            "details": self.details,
        }


class InputError(DrError):
    code = 2000
    exit_code = 2


class InventoryError(InputError):
    code = 2100


class ManifestError(InputError):
    code = 2200


class ParameterError(InputError):
    code = 2300


class PolicyError(InputError):
    code = 2400


class ToolOutputError(InputError):
    code = 2500


class ESEHeaderError(InputError):
    """An ESE database, log or checkpoint header cannot be read (details: field, offset)."""

    code = 2700


class PreflightError(InputError):
    """A run would start without what its steps need (`dr run start --check` lists it).

    A host's transport, a staging folder, the repository or its key, a secret; details: the
    findings."""

    code = 2800


class NotFoundError(DrError):
    code = 2600
    exit_code = 2


class NotRecoverable(DrError):
    code = 3000
    exit_code = 3


class LogGap(NotRecoverable):
    """Generations are missing between the chosen chain and the target (details: the gap)."""

    code = 3110


class ForeignLog(LogGap):
    """A log before the target cannot be replayed (details: generation, source, reason).

    Another log signature, a mismatched generation or damage: ESE stops there. A log backup
    taken after circular logging was on, with no full since, is refused the same way (A8)."""

    code = 3115


class NoFullBefore(NotRecoverable):
    code = 3120


class ArtifactExpired(NotRecoverable):
    code = 3130


class MissingSecret(NotRecoverable):
    code = 3140


class NameMismatch(NotRecoverable):
    code = 3150


class VersionMismatch(NotRecoverable):
    code = 3160


class WrongDatabase(NotRecoverable):
    """Mail-level items would go into another database than the one they came from (A11)."""

    code = 3170


class RuleViolation(DrError):
    code = 4000
    exit_code = 4


class CircularLoggingViolation(RuleViolation):
    code = 4100


class ChainViolation(RuleViolation):
    code = 4200


class LogSequenceViolation(RuleViolation):
    code = 4300


class WorkspaceError(DrError):
    code = 5000
    exit_code = 5


class CatalogError(WorkspaceError):
    code = 5100


class StoreError(DrError):
    code = 6000
    exit_code = 6


class RepositoryLocked(StoreError):
    code = 6100


class KeyMismatch(StoreError):
    code = 6200


class IntegrityError(StoreError):
    code = 6300


class NotInRepository(StoreError):
    """A run another tool took is not in dr's repository: a person copies its files."""

    code = 6400


class RunError(DrError):
    code = 7000
    exit_code = 7


class DrillBusy(RunError):
    """Another `dr drill tick` holds the workspace's drill lock: nothing was started."""

    code = 7010
    exit_code = 75  # sysexits.h EX_TEMPFAIL: try again later


class LabError(DrError):
    """The built-in lab cannot do what was asked: no lab, an unknown host, database or fault."""

    code = 7700
    exit_code = 2


class ScenarioNeedsLab(LabError):
    """A scenario drill breaks what it drills, so it runs only in the built-in lab (C2)."""

    code = 7720


class TruthMismatch(LabError):
    """A database on a lab host differs from the lab's ground truth (details: what differs)."""

    code = 7710
    exit_code = 3


class EvidenceError(DrError):
    """Evidence cannot be made, read or kept (a run not finished, an unreadable file)."""

    code = 7500
    exit_code = 7


class EvidenceKeyMissing(EvidenceError):
    """No evidence signing key: create one with `dr evidence keygen`."""

    code = 7510


class EvidenceInvalid(EvidenceError):
    """A record, its signatures or the evidence log fail verification."""

    code = 7520


def all_error_classes() -> list[type[DrError]]:
    """Every class of the tree, base first (used by docs and the code-uniqueness test)."""
    found: list[type[DrError]] = []
    pending: list[type[DrError]] = [DrError]
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found

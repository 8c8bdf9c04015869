"""The estate: what exists, as declared in the inventory YAML (see docs/inventory.md).

These models only describe shape and single-field rules. Cross-references (an unknown
server, a duplicate log prefix, a database on a drive the server lacks, ...) are checked by
:mod:`dr.model.validate`, which knows the YAML line and column of every field.

Durations are written like ``15m``, ``4h``, ``30d`` (or plain seconds) and held as seconds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from dr.model.sets import BackupSet


def _as_int(value: object) -> object:
    """``"2003"`` → 2003: versions are often quoted in YAML; accept both spellings."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


def _as_str(value: object) -> object:
    """``2003`` → ``"2003"``: an unquoted Windows version reads as a number in YAML."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ExchangeVersion = Annotated[
    Literal[2000, 2003, 2007, 2010, 2013, 2016, 2019], BeforeValidator(_as_int)
]
WindowsVersion = Annotated[
    Literal["2000", "2003", "2003R2", "2008", "2008R2", "2012", "2012R2", "2016", "2019", "2022"],
    BeforeValidator(_as_str),
]
Role = Literal[
    "mailbox",
    "client-access",
    "hub-transport",
    "edge-transport",
    "front-end",
    "back-end",
    "domain-controller",
    "global-catalog",
    "certificate-authority",
    "kms",
    "file",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> float:
    """``90``, ``"15m"``, ``"4h"``, ``"30d"`` → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or like 15m, 4h, 30d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (write 15m, 4h, 30d or seconds)")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _check_name(value: str) -> str:
    """Names are joined with '/' in references (SERVER/SG/DB), so they cannot contain one."""
    if not value.strip():
        raise ValueError("a name cannot be empty")
    if "/" in value:
        raise ValueError(f"{value!r} contains '/', which separates names in references")
    return value


Name = Annotated[str, AfterValidator(_check_name)]


PowerShellVersion = Literal["none", "1.0", "2.0", "3.0", "4.0", "5.0", "5.1"]


class Model(BaseModel):
    """Base of every inventory model: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AdministrativeGroup(Model):
    name: Name
    legacy_exchange_dn: str = Field(
        description="e.g. /o=Contoso/ou=First Administrative Group; must match in a recovery forest"
    )


class Organization(Model):
    name: Name
    administrative_groups: list[AdministrativeGroup] = Field(min_length=1)


class Domain(Model):
    name: str = Field(description="DNS name, e.g. corp.contoso.com")
    netbios: str | None = None
    domain_controllers: list[str] = Field(default_factory=list, description="server names")


class Forest(Model):
    name: str = Field(description="the forest root domain's DNS name")
    domains: list[Domain] = Field(min_length=1)


class Drive(Model):
    letter: str = Field(description="C, D, E, ...")
    size_gb: float = Field(gt=0)
    free_gb: float | None = Field(default=None, ge=0)
    critical: bool = Field(
        default=False, description="holds system state / boot / system volume (wbadmin critical)"
    )
    label: str | None = None

    @field_validator("letter")
    @classmethod
    def _letter(cls, value: str) -> str:
        letter = value.rstrip(":\\").upper()
        if len(letter) != 1 or not letter.isalpha():
            raise ValueError(f"{value!r} is not a drive letter (write C, D, E ...)")
        return letter


class Database(Model):
    name: Name
    kind: Literal["mailbox", "public"] = "mailbox"
    edb: str = Field(description=r"path of the .edb, e.g. E:\Exchsrvr\mdbdata\priv1.edb")
    stm: str | None = Field(default=None, description="the .stm streaming file (2000/2003 only)")
    size_gb: float | None = Field(default=None, ge=0)
    page_size_kib: Literal[4, 8, 32] | None = Field(
        default=None, description="ESE page size in KiB: 4 (2000/2003), 8 (2007), 32 (2010+)"
    )


class StorageGroup(Model):
    """One ESE instance: one log stream. On 2010+ each database has its own."""

    name: Name
    log_prefix: str = Field(description="E00, E01, ...")
    log_path: str
    system_path: str
    circular_logging: bool = False
    databases: list[Database] = Field(default_factory=list)

    @field_validator("log_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"E[0-9A-Fa-f]{2}", value):
            raise ValueError(f"{value!r} is not a log prefix (E00 ... EFF)")
        return value.upper()


class Server(Model):
    name: Name
    domain: str
    windows_version: WindowsVersion
    exchange_version: ExchangeVersion | None = None
    administrative_group: str | None = None
    roles: list[Role] = Field(default_factory=list)
    install_path: str | None = Field(default=None, description=r"e.g. C:\Program Files\Exchsrvr")
    components: list[str] = Field(
        default_factory=list,
        description="installed components, replayed by disaster-recovery setup",
    )
    service_pack: str | None = None
    powershell: PowerShellVersion | None = Field(
        default=None,
        description="PowerShell installed beyond what Windows ships (e.g. WMF 2.0 on 2003 SP2), "
        "or none (2008 without the optional feature); `dr inventory probe` records what the "
        "host answers",
    )
    drives: list[Drive] = Field(default_factory=list)
    storage_groups: list[StorageGroup] = Field(default_factory=list)
    temp_folder: str | None = Field(default=None, description="backup staging / restore temp")
    iis_metabase: bool = False
    kms: bool = False
    certificate_authority: bool = False
    srs: bool = Field(default=False, description="Site Replication Service (2000/2003)")
    throughput_mb_s: float | None = Field(default=None, gt=0, description="restore speed override")

    @property
    def family(self) -> Literal["legacy", "modern"] | None:
        """'legacy' for Exchange 2000/2003, 'modern' for 2007+, None without Exchange."""
        if self.exchange_version is None:
            return None
        return "legacy" if self.exchange_version <= 2003 else "modern"


_MAJOR = {2007: 8, 2010: 14, 2013: 15, 2016: 15, 2019: 15}


def install_path_of(server: Server | RecoveryServer) -> str | None:
    """Where Exchange is installed: the inventory's ``install_path``, else setup's default for
    the version (``C:\\Program Files\\Exchsrvr`` on 2000/2003; ``…\\Exchange Server\\V15``
    on 2013+). None without Exchange."""
    if server.install_path:
        return server.install_path
    version = server.exchange_version
    if version is None:
        return None
    if version <= 2003:
        return "C:\\Program Files\\Exchsrvr"
    return f"C:\\Program Files\\Microsoft\\Exchange Server\\V{_MAJOR.get(version, 15)}"


class Mailbox(Model):
    alias: str
    display_name: str | None = None
    database: str = Field(description="SERVER/SG/DB, SG/DB, or DB when unambiguous")
    legacy_exchange_dn: str | None = None
    size_mb: float | None = Field(default=None, ge=0)
    item_count: int | None = Field(default=None, ge=0)


class RecoveryServer(Model):
    name: Name
    windows_version: WindowsVersion
    exchange_version: ExchangeVersion
    powershell: PowerShellVersion | None = None
    install_path: str | None = Field(default=None, description=r"e.g. C:\Program Files\Exchsrvr")
    administrative_group: str
    storage_groups: list[StorageGroup] = Field(default_factory=list)
    drives: list[Drive] = Field(default_factory=list)


class RecoveryForest(Model):
    """An isolated lab forest used for alternate-server restores, drills and mailbox recovery."""

    name: str
    organization: str
    domain: str
    administrative_groups: list[AdministrativeGroup] = Field(min_length=1)
    servers: list[RecoveryServer] = Field(min_length=1)
    isolated: bool = True


class Objective(Model):
    rpo: Duration = Field(description="most data a failure may lose, e.g. 15m")
    rto: Duration = Field(description="longest time to restore service, e.g. 4h")


class Sla(Model):
    default: Objective
    databases: dict[str, Objective] = Field(
        default_factory=dict, description="per-database overrides keyed by SG/DB reference"
    )
    availability_target: float | None = Field(
        default=None, gt=0, le=100, description="percent, e.g. 99.998"
    )


ScenarioName = Literal["store-failure", "server-loss", "directory-loss"]


class DrillOverride(Model):
    """A database's own drill period (a critical store may be drilled more often)."""

    period: Duration = Field(description="longest time between two passed drills, e.g. 90d")


class ScenarioDrill(Model):
    """A scenario drill (C2) at its own interval."""

    name: ScenarioName
    interval: Duration = Field(description="e.g. 365d")
    target: str | None = Field(
        default=None,
        description="what the drill breaks in the lab: a database (store-failure), a server "
        "(server-loss) or a domain (directory-loss); default: the inventory's first",
    )


class DrillPolicy(Model):
    """C1/C2: every database restored to an alternate server at least once per period.

    Six months by default (the operations guide's rule); ``databases`` overrides it per
    database (keyed like the SLA: SERVER/SG/DB, SG/DB or DB).
    """

    period: Duration = Field(default=182 * 86400, description="default: six months (182d)")
    forest: str | None = Field(default=None, description="recovery forest drills restore into")
    recovery_database_server: str | None = Field(
        default=None, description="2010+: restore into a recovery database on this server"
    )
    databases: dict[str, DrillOverride] = Field(default_factory=dict)
    scenarios: list[ScenarioDrill] = Field(default_factory=list)


class Retention(Model):
    deleted_items: Duration = Field(default=7 * 86400, description="deleted-item retention")
    deleted_mailboxes: Duration = Field(default=30 * 86400, description="deleted-mailbox retention")


class Offsite(Model):
    location: str
    country: str = Field(description="ISO 3166 country code or name: data-protection law applies")


SecretKind = Literal[
    "dsrm-password",
    "kms-startup-password",
    "ca-certificate-password",
    "backup-encryption-key",
    "service-account",
    "domain-join-account",
    "domain-join-password",
    "iis-backup-password",
    "other",
]


class SecretRef(Model):
    """Where a secret is kept: never its value (a value in the file is refused)."""

    name: str
    kind: SecretKind
    location: str = Field(description="e.g. 'Safe 2, envelope 14' or 'KeePass: DR/KMS'")
    env: str | None = Field(default=None, description="environment variable the engine may read")
    host: str | None = Field(default=None, description="the server it belongs to")


class Throughput(Model):
    """Restore speeds for RTO estimates (documented defaults in docs/inventory.md)."""

    default_mb_s: float = Field(default=60.0, gt=0)
    log_replay_logs_per_s: float = Field(default=4.0, gt=0)
    hosts: dict[str, float] = Field(default_factory=dict)


class Inventory(Model):
    timezone: str = Field(
        default="UTC", description="IANA zone the schedule times are in, e.g. Europe/Amsterdam"
    )
    organization: Organization
    forests: list[Forest] = Field(min_length=1)
    servers: list[Server] = Field(min_length=1)
    mailboxes: list[Mailbox] = Field(default_factory=list)
    recovery_forests: list[RecoveryForest] = Field(default_factory=list)
    sla: Sla
    retention: Retention = Field(default_factory=Retention)
    offsite: Offsite | None = None
    secrets: list[SecretRef] = Field(default_factory=list)
    backup_sets: list[BackupSet] = Field(default_factory=list)
    throughput: Throughput = Field(default_factory=Throughput)
    drills: DrillPolicy = Field(default_factory=DrillPolicy)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a time zone (write an IANA name like Europe/Amsterdam, or UTC)"
            ) from None
        return value

    def server(self, name: str) -> Server:
        for server in self.servers:
            if server.name.lower() == name.lower():
                return server
        raise KeyError(name)


def load_inventory(path: Path) -> Inventory:
    """Read, validate and cross-check an estate file; see :func:`dr.model.load.load_inventory`.

    Raises :class:`dr.errors.InventoryError` listing every problem with file:line:column.
    """
    from dr.model.load import load_inventory as _load

    return _load(path)

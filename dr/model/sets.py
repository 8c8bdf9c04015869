"""Backup sets, schedules and policies (FEATURES A1–A6).

A backup set is named, belongs to a host, has a type, selects what it covers, and carries its
schedules, compression, encryption (fixed at creation), delta policy and retention.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

SetType = Literal[
    "system-state",
    "system",
    "exchange",
    "exchange-mail-level",
    "iis-metabase",
    "kms",
    "ca",
    "files",
]


_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock(value: object) -> object:
    """An unquoted ``22:00`` is read by YAML 1.1 as the base-60 number 1320: turn it back."""
    if isinstance(value, int) and not isinstance(value, bool):
        hours, minutes = divmod(value, 60)
        return f"{hours:02d}:{minutes:02d}"
    return value


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Schedule(_Model):
    """daily / weekly at a time, or periodic every N minutes; with the backup type it runs."""

    every: Literal["day", "week", "minutes"]
    at: Annotated[str | None, BeforeValidator(_clock)] = Field(
        default=None, description="HH:MM (24-hour), for day and week"
    )
    weekday: Annotated[Weekday | None, BeforeValidator(_lower)] = None
    minutes: int | None = Field(default=None, ge=1, le=1440, description="for every: minutes")
    backup_type: Literal["full", "copy", "incremental", "differential"] = "full"

    @field_validator("at")
    @classmethod
    def _at(cls, value: str | None) -> str | None:
        if value is not None and not _HHMM.match(value):
            raise ValueError(f"{value!r} is not a time of day (write HH:MM, e.g. 22:00)")
        return value


class Encryption(_Model):
    """Fixed when the set is created; changing it is refused (A3)."""

    enabled: bool = True
    cipher: Literal["aes-256-gcm"] = "aes-256-gcm"
    key_ref: str | None = Field(default=None, description="name of a secret reference")


class DeltaPolicy(_Model):
    block_size: Literal["auto"] | int = "auto"
    max_deltas: int = Field(default=100, ge=1)
    max_changed_percent: float = Field(default=50.0, gt=0, le=100)
    differential: Literal["none", "weekly", "monthly"] = "none"
    differential_day: str | int | None = Field(
        default=None, description="weekday (mon..sun) for weekly, day of month for monthly"
    )


class RetentionPolicy(_Model):
    keep_days: int = Field(default=14, ge=0, description="keep every version this many days")
    keep_weekly_days: int = Field(default=60, ge=0, description="then one a week until this age")
    keep_monthly_days: int = Field(default=365, ge=0, description="then one a month until this")
    min_fulls: int = Field(default=1, ge=1)


class BackupSet(_Model):
    name: str
    host: str
    type: SetType
    covers: list[str] = Field(
        default_factory=list,
        description="storage groups / databases (SG or SG/DB), mailboxes, paths, or 'all'",
    )
    schedules: list[Schedule] = Field(default_factory=list)
    compression: Literal["fast", "normal"] = "normal"
    encryption: Encryption = Field(default_factory=Encryption)
    delta: DeltaPolicy = Field(default_factory=DeltaPolicy)
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)
    temp_folder: str | None = None

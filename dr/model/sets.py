"""Backup sets, schedules and policies (FEATURES A1–A6).

A backup set is named, belongs to a host, has a type, selects what it covers, and carries its
schedules, compression, encryption (fixed at creation), delta policy and retention.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Schedule(_Model):
    """daily / weekly at a time, or periodic every N minutes; with the backup type it runs."""

    every: Literal["day", "week", "minutes"]
    at: str | None = Field(default=None, description="HH:MM, for day and week")
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = None
    minutes: int | None = Field(default=None, ge=1, le=1440, description="for every: minutes")
    backup_type: Literal["full", "copy", "incremental", "differential"] = "full"


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

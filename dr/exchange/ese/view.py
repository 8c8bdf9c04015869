"""A header as plain JSON data: every field, times in ISO 8601, enums by name."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any

from dr.exchange.ese.model import (
    CheckpointHeader,
    DatabaseHeader,
    Header,
    LgPos,
    LogTime,
    Signature,
)

KINDS = {DatabaseHeader: "database", CheckpointHeader: "checkpoint"}


def to_dict(h: Header) -> dict[str, Any]:
    """``{"kind": "database" | "log" | "checkpoint", <field>: <value>, ...}``."""
    data: dict[str, Any] = {"kind": KINDS.get(type(h), "log")}
    data.update({f.name: _value(getattr(h, f.name)) for f in fields(h)})
    if isinstance(h, DatabaseHeader):
        data["state_text"] = h.state.text
    return data


def _value(value: Any) -> Any:
    if isinstance(value, LogTime):
        return value.iso()
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, Signature):
        return {
            "random": value.random,
            "created": value.created.iso(),
            "computer": value.computer,
            "text": value.text(),
        }
    if isinstance(value, LgPos):
        return {
            "generation": value.generation,
            "sector": value.sector,
            "offset": value.offset,
            "text": str(value),
        }
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _value(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple):
        return list(value)
    return value

"""Backup sets in the catalog: registration, allowed changes, compression history (A1–A4).

Encryption is chosen when a set is created and can never change: the data already stored
is encrypted with it, and a different key would make the set's own history unreadable. The
same holds for a set's host and type. Compression may change; the change applies to runs
that start after it (A4), so each change is stored with the time it takes effect.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from dr.catalog.model import CompressionChange, SetRecord, from_epoch, to_epoch
from dr.errors import ParameterError, PolicyError
from dr.model.sets import BackupSet


def _encryption_json(definition: BackupSet) -> str:
    return json.dumps(definition.encryption.model_dump(mode="json"), sort_keys=True)


def insert(conn: sqlite3.Connection, definition: BackupSet, at: datetime) -> None:
    if load_one(conn, definition.name) is not None:
        raise ParameterError(
            f"a backup set named {definition.name!r} already exists",
            hint="choose another name, or change it with `dr set edit`",
        )
    conn.execute(
        "INSERT INTO backup_sets (name, host, type, definition, encryption, created) "
        "VALUES (?,?,?,?,?,?)",
        (
            definition.name,
            definition.host,
            definition.type,
            definition.model_dump_json(),
            _encryption_json(definition),
            to_epoch(at),
        ),
    )
    _record_compression(conn, definition.name, definition.compression, at)


def update(conn: sqlite3.Connection, definition: BackupSet, at: datetime) -> bool:
    """Apply a changed definition; returns True when something changed."""
    current = load_one(conn, definition.name)
    if current is None:
        insert(conn, definition, at)
        return True
    _refuse_fixed_changes(current, definition)
    if definition == current.definition:
        return False
    if definition.compression != current.definition.compression:
        _record_compression(conn, definition.name, definition.compression, at)
    conn.execute(
        "UPDATE backup_sets SET definition = ? WHERE name = ?",
        (definition.model_dump_json(), definition.name),
    )
    return True


def sync(conn: sqlite3.Connection, definitions: list[BackupSet], at: datetime) -> list[str]:
    """Register the sets the inventory declares; refuse forbidden changes to existing ones."""
    added = []
    for definition in definitions:
        if load_one(conn, definition.name) is None:
            insert(conn, definition, at)
            added.append(definition.name)
        else:
            update(conn, definition, at)
    return added


def _refuse_fixed_changes(current: SetRecord, new: BackupSet) -> None:
    old = current.definition
    if old.encryption != new.encryption:
        raise PolicyError(
            f"backup set {new.name!r}: encryption is fixed when a set is created "
            f"(it was created with {_describe(old)}; the change asks for {_describe(new)})",
            hint="create a new set with the encryption you want and retire this one",
        )
    for field in ("host", "type"):
        if getattr(old, field) != getattr(new, field):
            raise PolicyError(
                f"backup set {new.name!r}: the {field} of a set cannot change "
                f"({getattr(old, field)!r} -> {getattr(new, field)!r})",
                hint="create a new set instead",
            )


def _describe(definition: BackupSet) -> str:
    enc = definition.encryption
    if not enc.enabled:
        return "encryption off"
    key = f", key {enc.key_ref}" if enc.key_ref else ""
    return f"encryption on ({enc.cipher}{key})"


def _record_compression(conn: sqlite3.Connection, name: str, value: str, at: datetime) -> None:
    conn.execute(
        "INSERT INTO set_compression (set_name, compression, effective) VALUES (?,?,?)",
        (name, value, to_epoch(at)),
    )


def load_one(conn: sqlite3.Connection, name: str) -> SetRecord | None:
    row = conn.execute(
        "SELECT definition, created FROM backup_sets WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else _record(conn, name, row[0], row[1])


def load_all(conn: sqlite3.Connection) -> list[SetRecord]:
    rows = conn.execute("SELECT name, definition, created FROM backup_sets ORDER BY name")
    return [_record(conn, name, text, created) for name, text, created in rows.fetchall()]


def _record(conn: sqlite3.Connection, name: str, text: str, created: int) -> SetRecord:
    history = conn.execute(
        "SELECT compression, effective FROM set_compression WHERE set_name = ? "
        "ORDER BY effective, id",
        (name,),
    ).fetchall()
    return SetRecord(
        definition=BackupSet.model_validate_json(text),
        created=from_epoch(created),
        compression_history=tuple(CompressionChange(c, from_epoch(e)) for c, e in history),
    )

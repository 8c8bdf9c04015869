"""Loading the estate file: YAML → secret scan → pydantic → cross-references.

Every stage reports *all* its problems located at file:line:column and a field path, and
:func:`load_inventory` raises one :class:`~dr.errors.InventoryError` carrying them. A later
stage runs only when the earlier ones passed (cross-references need a well-formed model).

Secret values are refused anywhere in the file: an inventory is shared, copied into
tickets and committed to repositories, so it records only *where* a secret is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dr.errors import InventoryError, Problem, WorkspaceError
from dr.model.inventory import Inventory
from dr.model.validate import check_inventory
from dr.model.yamlpos import Located, PathPart, YamlProblems, load_located
from dr.workspace import Workspace

_SECRET_WORDS = {"password", "passwd", "pwd", "passphrase", "secret", "pin", "privatekey"}
_SECRET_NAMES = {"key_value", "private_key", "api_key", "token", "credential", "credentials"}
_REFERENCE_SUFFIXES = {"ref", "location", "env", "kind", "name", "host"}
_SECRET_ENTRY_KEYS = {"value", "secret_value", "plaintext", "data", "content"}
_SECRET_MESSAGE = (
    "a secret value does not belong in the inventory — record only where it is kept "
    "(secrets[].location, e.g. 'Safe 2, envelope 14') and refer to it by name"
)


def load_inventory(path: Path) -> Inventory:
    """Read, validate and cross-check the estate file at ``path``; raise InventoryError."""
    file = str(path)
    located = _read(path)
    secret_paths = find_secret_paths(located.data)
    problems = [located.problem(path, _SECRET_MESSAGE) for path in secret_paths]
    try:
        inv = Inventory.model_validate(_without(located.data, secret_paths))
    except ValidationError as exc:
        problems += pydantic_problems(exc, located)
        raise _error(file, _in_file_order(problems)) from None
    problems += check_inventory(inv, located)
    if problems:
        raise _error(file, _in_file_order(problems))
    return inv


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def _read(path: Path) -> Located:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _error(str(path), [Problem("no such file", file=str(path))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(str(path), [Problem(f"cannot read: {exc}", file=str(path))]) from None
    try:
        located = load_located(text, str(path))
    except YamlProblems as exc:
        raise _error(str(path), exc.problems) from None
    if not isinstance(located.data, dict):
        got = "empty" if located.data is None else f"a {type(located.data).__name__}"
        problem = located.problem((), f"the estate file must be a mapping; this one is {got}")
        raise _error(str(path), [problem])
    return located


def _error(file: str, problems: list[Problem]) -> InventoryError:
    count = len(problems)
    noun = "problem" if count == 1 else "problems"
    return InventoryError(
        f"{file}: {count} {noun} in the inventory",
        hint="fix each line listed, then run `dr inventory validate` again",
        problems=problems,
    )


def workspace_inventory(ws: Workspace) -> Inventory:
    """The inventory recorded in the workspace by `dr init --inventory` / `dr inventory use`,
    with what its hosts answered when probed (:mod:`dr.hostfacts`)."""
    from dr import hostfacts

    return hostfacts.with_probed(recorded_inventory(ws), hostfacts.load(ws.root))


def recorded_inventory(ws: Workspace) -> Inventory:
    """The workspace's inventory file as written, without the probed answers."""
    path = ws.inventory_path()
    if path is None:
        raise WorkspaceError(
            f"the workspace {ws.root} has no inventory",
            hint="run `dr inventory use estate.yaml` (or `dr init --inventory estate.yaml`)",
        )
    if not path.is_file():
        raise WorkspaceError(
            f"the workspace's inventory {path} is missing",
            hint="restore the file or record another with `dr inventory use FILE`",
        )
    return load_inventory(path)


# --- secret values ---------------------------------------------------------------------


def _is_secret_key(key: str) -> bool:
    name = key.strip().lower().replace("-", "_")
    words = [w for w in re.split(r"[_\s]+", name) if w]
    if not words or words[-1] in _REFERENCE_SUFFIXES:
        return False
    return name in _SECRET_NAMES or any(w in _SECRET_WORDS for w in words)


def _walk(data: Any, path: tuple[PathPart, ...]) -> Iterator[tuple[tuple[PathPart, ...], Any]]:
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _walk(value, (*path, str(key)))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _walk(item, (*path, index))


def find_secret_paths(data: Any) -> list[tuple[PathPart, ...]]:
    """Every key that holds a secret value: password-like names anywhere, values under secrets."""
    found: list[tuple[PathPart, ...]] = []
    for path, _value in _walk(data, ()):
        if not path or not isinstance(path[-1], str):
            continue
        key = path[-1]
        in_secret_entry = len(path) == 3 and path[0] == "secrets"
        if _is_secret_key(key) or (in_secret_entry and key.lower() in _SECRET_ENTRY_KEYS):
            found.append(path)
    return found


def _without(data: Any, paths: list[tuple[PathPart, ...]]) -> Any:
    """A copy of ``data`` without the secret keys, so the rest of the file is still checked."""
    if not paths:
        return data
    drop = set(paths)

    def copy(node: Any, path: tuple[PathPart, ...]) -> Any:
        if isinstance(node, dict):
            return {
                k: copy(v, (*path, str(k))) for k, v in node.items() if (*path, str(k)) not in drop
            }
        if isinstance(node, list):
            return [copy(item, (*path, i)) for i, item in enumerate(node)]
        return node

    return copy(data, ())


# --- pydantic errors -------------------------------------------------------------------


def _data_path(loc: tuple[int | str, ...], data: Any) -> tuple[PathPart, ...]:
    """The part of a pydantic ``loc`` that exists in the data, plus a missing last key.

    pydantic appends union members and validator names (``literal['auto']``,
    ``function-after[...]``) to ``loc``; those are not places in the file.
    """
    path: list[PathPart] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and str(part) in map(str, node):
            node = next(v for k, v in node.items() if str(k) == part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not path_has_union(part):
            path.append(part)  # a missing required field: located at its parent
            break
        else:
            break
        path.append(part)
    return tuple(path)


def path_has_union(part: str) -> bool:
    """pydantic's names for union members and validators contain brackets or a colon."""
    return any(c in part for c in "[]():,")


def _message(error: Any, data: Any, path: tuple[PathPart, ...]) -> str:
    kind = error["type"]
    msg = str(error["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        return f"missing required field {path[-1]!r}" if path else msg
    if kind == "extra_forbidden":
        return "unknown field — check the spelling against docs/inventory.md"
    value = error.get("input")
    if kind != "value_error" and isinstance(value, str | int | float | bool):
        return f"{msg} (got {value!r})"
    return msg


def pydantic_problems(exc: ValidationError, located: Located) -> list[Problem]:
    """pydantic's errors located in the file; union alternatives merged into one problem."""
    merged: dict[tuple[PathPart, ...], list[str]] = {}
    for error in exc.errors():
        path = _data_path(tuple(error["loc"]), located.data)
        text = _message(error, located.data, path)
        bucket = merged.setdefault(path, [])
        if text not in bucket:
            bucket.append(text)
    problems = [located.problem(path, "; or ".join(texts)) for path, texts in merged.items()]
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))

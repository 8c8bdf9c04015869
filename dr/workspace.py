"""The workspace: the directory that holds the catalog, the run journal and settings.

Found, in order: an explicit path (``--workspace``), ``$DR_WORKSPACE``, else ``./.dr``.
``config.yaml`` inside it records settings such as the inventory file in use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dr.errors import WorkspaceError

ENV_VAR = "DR_WORKSPACE"
DEFAULT_DIR = ".dr"
CONFIG_NAME = "config.yaml"


def resolve_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    try:
        here = Path.cwd()
    except FileNotFoundError:  # the shell's current directory was deleted under it
        from dr.errors import WorkspaceError

        raise WorkspaceError(
            "the current directory no longer exists (it was deleted or moved)",
            hint=f"cd to an existing directory, or name the workspace: --workspace DIR or "
            f"${ENV_VAR}",
        ) from None
    return (here / DEFAULT_DIR).resolve()


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def journal_path(self) -> Path:
        return self.root / "journal.sqlite"

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    def exists(self) -> bool:
        return self.config_path.is_file()

    def config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            return {}
        from engine.yamlpos import YamlSyntaxError, load_located

        try:  # bounded in size, depth and aliases like every YAML dr reads
            data = load_located(self.config_path.read_text(encoding="utf-8")).data or {}
        except (YamlSyntaxError, UnicodeDecodeError) as exc:
            raise WorkspaceError(
                f"{self.config_path}: not valid YAML ({exc})",
                hint="fix or delete the file, then run `dr init` again",
            ) from None
        if not isinstance(data, dict):
            raise WorkspaceError(f"{self.config_path}: expected a mapping")
        return data

    def update_config(self, **values: Any) -> None:
        data = self.config()
        data.update(values)
        _atomic_write(self.config_path, yaml.safe_dump(data, sort_keys=True))

    def inventory_path(self) -> Path | None:
        value = self.config().get("inventory")
        return Path(value) if value else None


def init(root: Path, inventory: Path | None = None) -> Workspace:
    """Create the workspace directory (idempotent) and record the inventory in use."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(f"cannot create workspace {root}: {exc.strerror}") from exc
    ws = Workspace(root)
    values: dict[str, Any] = {"format": 1}
    if inventory is not None:
        values["inventory"] = str(inventory.resolve())
    ws.update_config(**values)
    return ws


def open_existing(explicit: str | os.PathLike[str] | None = None) -> Workspace:
    ws = Workspace(resolve_path(explicit))
    if not ws.exists():
        raise WorkspaceError(
            f"no dr workspace at {ws.root}",
            hint="run `dr init` here, or pass --workspace / set DR_WORKSPACE",
        )
    return ws


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)

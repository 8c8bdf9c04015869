"""Where the data files that ship with dr live: the step library and the document templates.

In a wheel they are packaged under ``dr/_data/<name>`` (hatchling force-include); in an
editable install or a source checkout they sit at the repository root. The engine never
imports ``dr``, so the package is only looked up by name, never imported as a module of ours.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir(name: str) -> Path:
    """The directory of packaged data ``name`` (``"runbooks"`` or ``"templates"``)."""
    packaged = _packaged(name)
    if packaged is not None and packaged.is_dir():
        return packaged
    return _REPO_ROOT / name


def _packaged(name: str) -> Path | None:
    spec = importlib.util.find_spec("dr")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "_data" / name
        if candidate.is_dir():
            return candidate
    return None

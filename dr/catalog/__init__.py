"""The backup catalog: sets, runs and artifacts in one SQLite file (see docs/catalog.md)."""

from __future__ import annotations

from dr.catalog.catalog import Catalog
from dr.catalog.model import (
    ARTIFACT_KINDS,
    Artifact,
    ImportReport,
    NewArtifact,
    NewRun,
    Run,
    SetRecord,
)

__all__ = [
    "ARTIFACT_KINDS",
    "Artifact",
    "Catalog",
    "ImportReport",
    "NewArtifact",
    "NewRun",
    "Run",
    "SetRecord",
]

"""ESE (JET Blue) file headers read and written from the bytes, on any OS (FEATURES E10).

``read_header`` / ``read_file`` give what ``eseutil /mh``, ``/ml`` and ``/mk`` would show
(state, Log Required, signatures, page size, backup marks; a log's generation and
signature; a checkpoint's position) without a Windows host; ``*_bytes`` write headers that
ESE's own checks accept (magic, file type, old-format checksum, shadow copy); ``mh_text``,
``mk_text``, ``ml_text`` print them as the Exchange version's eseutil does.

Layout, sources and limits: docs/exchange-rules.md, "Reading ESE headers".
"""

from __future__ import annotations

from dr.exchange.ese.binary import (
    checkpoint_bytes,
    checksum,
    database_header_bytes,
    log_header_bytes,
    read_file,
    read_header,
)
from dr.exchange.ese.logtext import log_text, ml_text
from dr.exchange.ese.model import (
    BackupInfo,
    BackupKind,
    CheckpointHeader,
    DatabaseHeader,
    DbState,
    Header,
    LgPos,
    LogHeader,
    LogTime,
    Signature,
)
from dr.exchange.ese.text import FAMILIES, mh_text, mk_text
from dr.exchange.ese.view import to_dict

__all__ = [
    "FAMILIES",
    "BackupInfo",
    "BackupKind",
    "CheckpointHeader",
    "DatabaseHeader",
    "DbState",
    "Header",
    "LgPos",
    "LogHeader",
    "LogTime",
    "Signature",
    "checkpoint_bytes",
    "checksum",
    "database_header_bytes",
    "log_header_bytes",
    "log_text",
    "mh_text",
    "mk_text",
    "ml_text",
    "read_file",
    "read_header",
    "to_dict",
]

"""Reading a manifest in chunks: memory stays bounded whatever the file's size.

Readers take text from :class:`Source` one chunk (or line) at a time; the source reports
how many characters were consumed so the CLI can draw a progress bar, and turns every way
a file can be unreadable into one :class:`ManifestError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from dr.errors import ManifestError

CHUNK = 1 << 20
Progress = Callable[[int], None]


class Source:
    """A manifest file opened as UTF-8 text (a byte-order mark is skipped)."""

    def __init__(self, path: Path, progress: Progress | None = None) -> None:
        self.path = path
        self.progress = progress
        self.size = _size(path)

    def head(self, limit: int = 65536) -> str:
        """The start of the file, for telling its format."""
        with self._open() as fh:
            return self._read(fh, limit)

    def text(self) -> str:
        """The whole file (for the small formats: wbadmin output)."""
        with self._open() as fh:
            return self._read(fh, -1)

    def chunks(self) -> Iterator[str]:
        with self._open() as fh:
            while chunk := self._read(fh, CHUNK):
                yield chunk
                if self.progress is not None:
                    self.progress(len(chunk))

    def lines(self) -> Iterator[str]:
        """Lines with their line ends, as the csv module wants them."""
        rest = ""
        for chunk in self.chunks():
            parts = (rest + chunk).split("\n")
            rest = parts.pop()
            for part in parts:
                yield part + "\n"
        if rest:
            yield rest

    def _open(self) -> TextIO:
        try:
            return self.path.open(encoding="utf-8-sig", newline="")
        except FileNotFoundError as exc:
            raise ManifestError(f"{self.path}: no such file", hint="check the path") from exc
        except OSError as exc:
            raise ManifestError(f"{self.path}: cannot read ({exc.strerror})") from exc

    def _read(self, fh: TextIO, size: int) -> str:
        try:
            return fh.read(size)
        except UnicodeDecodeError as exc:
            raise ManifestError(
                f"{self.path}: not UTF-8 text (byte {exc.start} of a block)",
                hint="save the manifest as UTF-8 (wbadmin output: redirect with `> file.txt`, "
                "then convert with `Get-Content f.txt | Set-Content -Encoding UTF8 g.txt`)",
            ) from exc
        except OSError as exc:
            raise ManifestError(f"{self.path}: cannot read ({exc.strerror})") from exc


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: no such file", hint="check the path") from exc
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from exc

"""`dr exchange`: Exchange files read directly, without a Windows host (FEATURES E10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dr.cli.common import emit_json

app = typer.Typer(
    no_args_is_help=True,
    help="Exchange and other ESE files read directly from their bytes, on any OS.",
)


@app.command("inspect")
def inspect(
    files: list[Path] = typer.Argument(
        ...,
        help="ESE databases (.edb, .dat), logs (.log) or checkpoints (.chk).",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per file."),
    family: int = typer.Option(
        2016,
        "--family",
        help="Exchange version whose eseutil output to imitate: 2000, 2003, 2007, 2010, "
        "2013, 2016 or 2019.",
    ),
) -> None:
    """Check restored ESE files before they reach a Windows host: read each file's header
    from its bytes and print it the way `eseutil /mh` (database), `/ml` (log) or `/mk`
    (checkpoint) would: state, Log Required, signatures, page size, backup marks; a log's
    generation and signature; the checkpoint position.

    Example: `dr exchange inspect restore/DB01.edb restore/E01.chk restore/E01.log --family 2010`

    Exits 0 when every file was read, 2 when one was not (the message names the file and the
    byte offset: not an ESE file, bad checksum, unknown file type).
    """
    from dr.errors import ESEHeaderError, ParameterError
    from dr.exchange.ese import FAMILIES, read_file

    if family not in FAMILIES:
        raise ParameterError(
            f"--family {family} is not one of {', '.join(map(str, FAMILIES))}",
            hint="give the Exchange version whose eseutil output you want",
        )
    results: list[dict[str, Any]] = []
    failures: list[ESEHeaderError] = []
    for path in files:
        try:
            header = read_file(path)
        except ESEHeaderError as exc:
            failures.append(exc)
            results.append({"file": str(path), "error": exc.to_dict()})
            continue
        results.append(_show(path, header, family, as_json))
    if as_json:
        emit_json(results)
    if failures:
        _fail(failures)


def _show(path: Path, header: Any, family: int, as_json: bool) -> dict[str, Any]:
    from dr.exchange.ese import to_dict

    if not as_json:
        typer.echo(_text(path, header, family), nl=False)
    return {"file": str(path), **to_dict(header)}


def _text(path: Path, header: Any, family: int) -> str:
    from dr.exchange.ese import DatabaseHeader, LogHeader, log_text, mh_text, mk_text
    from dr.exchange.ese.binary import stored_checksum

    shown = str(path)
    if isinstance(header, DatabaseHeader):
        return mh_text(shown, header, family=family, checksum=stored_checksum(path))
    if isinstance(header, LogHeader):
        return log_text(shown, header, family=family, base_name=path.name[:3].upper())
    return mk_text(shown, header, family=family)


def _fail(failures: list[Any]) -> None:
    from dr.errors import ESEHeaderError

    if len(failures) == 1:
        raise failures[0]
    problems = [p for exc in failures for p in exc.problems]
    raise ESEHeaderError(f"{len(failures)} files could not be read", problems=problems)

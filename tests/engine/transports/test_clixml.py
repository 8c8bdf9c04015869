"""CLIXML stderr from powershell.exe made plain (samples in the shape WinRS returns)."""

from __future__ import annotations

from engine.transports.clixml import decode_clixml, decode_stderr, unescape

NS = 'xmlns="http://schemas.microsoft.com/powershell/2004/04"'
PROGRESS = (
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject'
    '</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing'
    " modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T>"
    "<SR>-1</SR><SD> </SD></PR></MS></Obj>"
)
ERROR = (
    '<S S="Error">Dismount-Database : The database "DB1" was not found._x000D__x000A_</S>'
    '<S S="Error">At line:1 char:1_x000D__x000A_</S>'
)


def test_progress_records_are_dropped_and_errors_kept() -> None:
    raw = f'#< CLIXML\r\n<Objs Version="1.1.0.1" {NS}>{PROGRESS}{ERROR}</Objs>'.encode()
    assert decode_stderr(raw) == (
        b'Dismount-Database : The database "DB1" was not found.\r\nAt line:1 char:1\r\n'
    )


def test_progress_only_stderr_becomes_empty() -> None:
    raw = f'#< CLIXML\r\n<Objs Version="1.1.0.1" {NS}>{PROGRESS}</Objs>'.encode()
    assert decode_stderr(raw) == b""


def test_bom_and_several_documents() -> None:
    one = f'<Objs Version="1.1.0.1" {NS}><S S="Error">first_x000A_</S></Objs>'
    two = f'<Objs Version="1.1.0.1" {NS}><S S="warning">disk low_x000A_</S></Objs>'
    raw = ("\ufeff#< CLIXML\r\n" + one + two).encode()
    assert decode_stderr(raw) == b"first\nWARNING: disk low\n"


def test_escapes_surrogate_pairs_and_literal_underscores() -> None:
    assert unescape("_xD83D__xDE00_ ok_x005F_x000A_") == "\U0001f600 ok_x000A_"
    assert unescape("tab_x0009_end") == "tab\tend"


def test_text_before_the_marker_is_kept() -> None:
    text = f'eseutil: error -1018\r\n#< CLIXML\r\n<Objs {NS}><S S="Error">bad_x000A_</S></Objs>'
    assert decode_clixml(text) == "eseutil: error -1018\r\nbad\n"


def test_plain_stderr_passes_through_byte_for_byte() -> None:
    raw = b"Access denied \xff\r\n"
    assert decode_stderr(raw) is raw


def test_damaged_document_is_kept_raw() -> None:
    broken = f'<Objs {NS}><S S="Error">unclosed</Objs>'
    assert decode_clixml("#< CLIXML\r\n" + broken) == broken

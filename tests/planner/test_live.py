"""The logs still on a server, from a listing a responder makes (`--server-logs`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dr.errors import ParameterError
from dr.model.inventory import load_inventory
from dr.planner.live import generations, live_logs

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2024, 5, 19, 22, 10, tzinfo=UTC)

DIR_LISTING = """ Directory of F:\\ExchangeLogs\\DB01

05/19/2024  11:52 PM         1,048,576 E00{a:08X}.log
05/19/2024  11:58 PM         1,048,576 E00{b:08X}.log
05/19/2024  11:59 PM         1,048,576 E00.log
05/19/2024  11:59 PM             8,192 E00.chk
05/19/2024  11:58 PM         1,048,576 E01{b:08X}.log
"""

ESEUTIL_ML = """Verifying log files...
     Base name: E00

      Log file: F:\\ExchangeLogs\\DB01\\E00{a:08X}.log - OK
      Log file: F:\\ExchangeLogs\\DB01\\E00{b:08X}.log - OK

No damaged log files were found.
"""


@pytest.fixture(scope="module")
def inv():  # type: ignore[no-untyped-def]
    return load_inventory(ROOT / "examples" / "estate.yaml")


@pytest.mark.parametrize(
    ("listing", "last", "current"), [(DIR_LISTING, 254302, 254302), (ESEUTIL_ML, 254301, None)]
)
def test_a_listing_gives_the_run_of_generations(
    inv, listing: str, last: int, current: int | None
) -> None:  # type: ignore[no-untyped-def]
    text = listing.format(a=254300, b=254301)
    live = live_logs(inv, "DB01", text, AT, "listing.txt")
    assert (live.stream, live.logs.prefix) == ("EX2016/DB01", "E00")
    # a listed E00.log is the open log: the generation after the last numbered one
    assert (live.logs.first, live.logs.last, live.at) == (254300, last, AT)
    assert live.current == current


def test_the_open_log_states_its_generation_in_eseutil_output(inv) -> None:  # type: ignore[no-untyped-def]
    text = "Base name: E00\n      Log file: E00.log\n      lGeneration: 254309 (0x3E165)\n"
    text += "E000003E164.log\n"
    live = live_logs(inv, "DB01", text, AT, "listing.txt")
    assert live.current == 254309 and live.logs.last == 254309


def test_other_prefixes_and_widths_do_not_count() -> None:
    text = "E0100000005.log E0000005.log E0000000007.log E00.log"
    assert generations(text, "E00", 8) == [7]
    assert generations(text, "E00", 5) == [5]


def test_a_hole_in_the_server_logs_is_named(inv) -> None:  # type: ignore[no-untyped-def]
    text = "E000003E15C.log E000003E15D.log E000003E160.log"
    with pytest.raises(ParameterError) as caught:
        live_logs(inv, "DB01", text, AT, "holed.txt")
    assert "254302–254303 are missing" in caught.value.message


def test_a_listing_without_the_prefix_is_a_clear_error(inv) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParameterError) as caught:
        live_logs(inv, "First Storage Group", "nothing here", AT, "empty.txt")
    assert "no E00 log file names (5 hex digits)" in caught.value.message


def test_point_of_failure_plan_replays_the_server_logs(tmp_path: Path) -> None:
    env = {**os.environ, "DR_WORKSPACE": str(tmp_path / "ws")}

    def dr(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=env,
            check=False,
        )  # fmt: skip

    assert dr("init", "--inventory", str(ROOT / "examples" / "estate.yaml")).returncode == 0
    assert dr("catalog", "import", str(ROOT / "examples" / "history.json")).returncode == 0
    without = json.loads(dr("plan", "database", "--db", "DB01", "--json").stdout)
    assert without["data_loss_window_seconds"] is None
    listing = tmp_path / "e00.txt"
    listing.write_text(DIR_LISTING.format(a=254300, b=254301), encoding="utf-8")
    out = dr("plan", "database", "--db", "DB01", "--server-logs", f"DB01={listing}",
             "--logs-listed-at", "2024-05-19T22:10Z", "--json")  # fmt: skip
    plan = json.loads(out.stdout)
    assert out.returncode == 0, out.stderr
    assert plan["data_loss_window_seconds"] == 0
    assert plan["recoverable_point"] == "2024-05-19T22:10:00Z"
    copy = next(s for s in plan["steps"] if s["kind"] == "copy-live-logs")
    # the point of failure is in the open E00.log: it is copied too, as the last generation
    assert copy["params"]["last_gen"] == 254302 and copy["params"]["current_gen"] == 254302
    bad = dr("plan", "database", "--db", "DB01", "--server-logs", "DB01")
    assert bad.returncode == 2 and "STORAGE-GROUP=FILE" in bad.stderr


ESEUTIL_ML_FOREIGN = """Verifying log files...
     Base name: E00

      Log file: F:\\ExchangeLogs\\DB01\\E00{a:08X}.log - OK
      Log file: F:\\ExchangeLogs\\DB01\\E00{b:08X}.log - OK
      Log file: F:\\ExchangeLogs\\DB01\\E00{c:08X}.log
      Log file: F:\\ExchangeLogs\\DB01\\E00{d:08X}.log - OK

Operation terminated with error -530 (JET_errBadLogSignature, Bad signature for a log file) \
after 0.31 seconds.
"""


def test_eseutil_ml_marks_where_the_usable_logs_stop(inv) -> None:  # type: ignore[no-untyped-def]
    """A log eseutil /ml did not pass (here another log signature, -530) is kept as the point
    replay stops at, with eseutil's reason; the logs after it are listed but never used."""
    text = ESEUTIL_ML_FOREIGN.format(a=254300, b=254301, c=254302, d=254303)
    live = live_logs(inv, "DB01", text, AT, "ml.txt")
    assert (live.logs.first, live.logs.last) == (254300, 254303)
    assert live.unusable_from == 254302
    assert live.unusable_reason is not None
    assert "E000003E15E.log" in live.unusable_reason
    assert "JET_errBadLogSignature" in live.unusable_reason


def test_an_eseutil_ml_mismatch_is_named_with_its_error(inv) -> None:  # type: ignore[no-untyped-def]
    text = (ROOT / "tests" / "exchange" / "fixtures" / "ml_2016_mismatch.txt").read_text()
    live = live_logs(inv, "EX2016/DB02", text, AT, "ml.txt")
    assert live.unusable_from == 0x10D7
    assert "Mismatched log generation" in (live.unusable_reason or "")


def test_a_log_of_another_stream_in_the_folder_stops_the_usable_logs(inv) -> None:  # type: ignore[no-untyped-def]
    """eseutil /ml as the ESE header reader prints it for a folder where one log carries
    another log signature (-530): the server's logs stop before that generation."""
    from dr.exchange.ese import LogHeader, LogTime, Signature, ml_text

    made = LogTime(2024, 5, 1, 8, 0, 0)
    ours, theirs = Signature(1182398, made), Signature(999, made)
    logs = [
        (f"E00{g:08X}.log", LogHeader(g, theirs if g == 0x3E15E else ours, made, made, 32768))
        for g in range(0x3E15C, 0x3E160)
    ]
    text = ml_text(r"F:\ExchangeLogs\DB01", "E00", logs, family=2016)
    assert "Invalid log signature" in text
    live = live_logs(inv, "DB01", text, AT, "ml.txt")
    assert live.unusable_from == 0x3E15E
    assert "Invalid log signature" in (live.unusable_reason or "")
    assert (live.logs.first, live.logs.last) == (0x3E15C, 0x3E15F)

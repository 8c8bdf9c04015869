"""Suggested commands paste into a shell as they are: one word per argument."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from dr.suggest import Placeholder, iso, suggest


@given(st.lists(st.text(st.characters(exclude_characters="\x00"), min_size=1), min_size=1))
def test_every_argument_comes_back_whole(args: list[str]) -> None:
    assert shlex.split(suggest(*args)) == args


def test_hostile_values_are_data_and_placeholders_stay_bare() -> None:
    line = suggest("dr", "run", "ack", "r1", "x'; rm -rf / #", "--by", Placeholder("NAME"))
    assert line == "dr run ack r1 'x'\"'\"'; rm -rf / #' --by NAME"


def test_a_time_is_one_word_in_utc() -> None:
    at = datetime(2024, 5, 14, 13, 2, 36, tzinfo=timezone(timedelta(hours=2)))
    assert iso(at) == "2024-05-14T11:02:36Z"
    assert suggest("--at", iso(at)) == "--at 2024-05-14T11:02:36Z"
    assert datetime.fromisoformat(iso(at)) == at.astimezone(UTC)

"""One way to print a duration and a size (issue: the same plan showed different numbers)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.units import duration, size


def test_durations_in_words() -> None:
    cases = {0: "0 s", 30: "30 s", 59.4: "59 s", 59.6: "1 min", 600: "10 min", 3600: "1 h",
             5400: "1 h 30 min", 8390: "2 h 20 min", 86_400: "1 d", 97_200: "1 d 3 h"}  # fmt: skip
    assert {s: duration(s) for s in cases} == cases
    assert duration(None) == "unknown" and duration(None, "not measured") == "not measured"


def test_sizes_in_binary_units() -> None:
    cases = {0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 400_000: "390.6 KiB",
             200_000_000: "190.7 MiB", 1_048_575: "1.0 MiB", 5 * 2**40: "5.0 TiB"}  # fmt: skip
    assert {n: size(n) for n in cases} == cases


def _minutes(text: str) -> float:
    units = {"s": 1 / 60, "min": 1, "h": 60, "d": 1440}
    words = text.split()
    return sum(float(n) * units[u] for n, u in zip(words[::2], words[1::2], strict=True))


@given(st.floats(min_value=0, max_value=10**7), st.floats(min_value=0, max_value=10**7))
def test_a_longer_time_never_reads_shorter_and_reads_close(a: float, b: float) -> None:
    short, long = sorted((a, b))
    assert _minutes(duration(short)) <= _minutes(duration(long))
    assert abs(_minutes(duration(long)) * 60 - long) <= (1800 if long >= 86_400 else 30)

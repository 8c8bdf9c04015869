"""Drills: restore tests on schedule, their verdicts and their history (C1, C2, E6)."""

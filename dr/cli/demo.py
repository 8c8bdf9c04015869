"""`dr demo`: the whole path on the example estate, in a throw-away workspace."""

from __future__ import annotations


def command() -> None:
    """Run the demo on the built-in example estate."""
    raise NotImplementedError

"""Write docs/errors.md from the two error trees: ``python -m dr.errors_doc > docs/errors.md``.

A test checks the file is current, so a new error class cannot go undocumented.
"""

from __future__ import annotations

import inspect

from dr.errors import all_error_classes
from engine.errors import all_error_classes as engine_error_classes

HEADER = """# Error codes

Every error dr prints starts with a stable code (`E2100 …`). Scripts may match on them; the
process exit code is the class's exit code (see [cli.md](cli.md)). Generated from
`dr/errors.py` and `engine/errors.py` by `python -m dr.errors_doc`.

| code | exit | name | parent | meaning |
| --- | --- | --- | --- | --- |
"""


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    own = cls.__dict__.get("__doc__")
    return doc.splitlines()[0] if own and doc else ""


def _row(cls: type) -> str:
    parent = cls.__bases__[0].__name__ if cls.__bases__[0] is not Exception else ""
    meaning = _summary(cls) or _tree_meaning(cls)
    return f"| E{cls.code} | {cls.exit_code} | `{cls.__name__}` | {parent} | {meaning} |"


def _tree_meaning(cls: type) -> str:
    module = inspect.getmodule(cls)
    for line in (module.__doc__ or "").splitlines() if module else []:
        stripped = line.strip("│├└─ ")
        parts = stripped.split()
        if len(parts) > 3 and parts[0] == cls.__name__ and parts[1] == str(cls.code):
            return " ".join(parts[3:])
    return ""


def render() -> str:
    classes = sorted([*all_error_classes(), *engine_error_classes()], key=lambda c: c.code)
    return HEADER + "\n".join(_row(cls) for cls in classes) + "\n"


if __name__ == "__main__":
    print(render(), end="")

"""The error trees: stable, unique codes, documented in docs/errors.md."""

from __future__ import annotations

import re
from pathlib import Path

from dr.errors import DrError, InventoryError, Problem, all_error_classes
from engine.errors import all_error_classes as engine_error_classes

DOCS = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


def test_codes_are_unique_across_both_trees() -> None:
    classes = [*all_error_classes(), *engine_error_classes()]
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes)), sorted(codes)


def test_errors_doc_is_current() -> None:
    from dr.errors_doc import render

    assert DOCS.read_text(encoding="utf-8") == render(), (
        "run: python -m dr.errors_doc > docs/errors.md"
    )


def test_every_code_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"\bE(\d{4})\b", text))
    for cls in [*all_error_classes(), *engine_error_classes()]:
        assert str(cls.code) in documented, f"{cls.__name__} (E{cls.code}) not in docs/errors.md"


def test_every_class_is_in_its_modules_docstring_tree() -> None:
    import dr.errors
    import engine.errors

    for module, classes in (
        (dr.errors, all_error_classes()),
        (engine.errors, engine_error_classes()),
    ):
        for cls in classes:
            pattern = rf"{cls.__name__}\s+{cls.code}\s+{cls.exit_code}\b"
            assert re.search(pattern, module.__doc__ or ""), cls.__name__


def test_problem_lines_name_file_line_column_and_field() -> None:
    err = InventoryError(
        "2 problems",
        problems=[
            Problem("unknown server 'EX9'", "estate.yaml", 12, 5, "mailboxes[0].database"),
            Problem("duplicate name", "estate.yaml", 3, None, None),
        ],
    )
    assert err.lines() == [
        "E2100 estate.yaml:12:5: mailboxes[0].database: unknown server 'EX9'",
        "E2100 estate.yaml:3: duplicate name",
    ]
    assert err.exit_code == 2


def test_single_error_line_carries_the_hint() -> None:
    err = DrError("catalog is locked", hint="wait for the other dr process")
    assert err.lines() == ["E1000 catalog is locked — wait for the other dr process"]
    assert err.to_dict()["code"] == "E1000"

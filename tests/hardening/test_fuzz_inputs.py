"""Every input format, mutated by hypothesis: one clear line, a documented exit code, no change.

Formats: the inventory (YAML), catalog imports (JSON, CSV, wbadmin text), a saved plan
(JSON) and a step-library file (YAML). Each example starts from a valid file and mutates
it (hostile snippets inserted, bytes flipped or cut). The real `dr` command runs in this
process, so an exception other than a clean exit fails the example with its traceback.
Whatever the exit code, nothing is written unless the command succeeded.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dr.errors
import engine.errors
from dr.cli import main

ROOT = Path(__file__).resolve().parents[2]
ESTATE = (ROOT / "examples" / "estate.yaml").read_bytes()
WBADMIN = (ROOT / "tests" / "exchange" / "fixtures" / "wbadmin_versions_2012.txt").read_bytes()
LIBRARY = (ROOT / "runbooks" / "common.yaml").read_bytes()
HISTORY = json.loads((ROOT / "examples" / "history.json").read_text())
JSON_MANIFEST = json.dumps({"format": HISTORY["format"], "runs": HISTORY["runs"][:2]}).encode()
CSV_MANIFEST = (
    b"run_id,set,host,type,start,end,kind,name,size,stored_size,storage_group,database\n"
    b"a,ex2016-exchange,EX2016,full,2024-05-06T01:00:00Z,2024-05-06T01:30:00Z,"
    b"database,DB01.edb,1000,400,DB01,DB01\n"
)


def _documented_exit_codes() -> set[int]:
    codes = {0, 2}  # success; a usage error (typer)
    for module, base in (
        (dr.errors, dr.errors.DrError),
        (engine.errors, engine.errors.EngineError),
    ):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, base):
                codes.add(value.exit_code)
    return codes


EXIT_CODES = _documented_exit_codes()

BIG = b"1180591620717411303424"  # 2**70: see the xfail tests for the imports
SNIPPETS = [
    b"\x00",
    b"\xff\xfe",
    b"\xc3(",
    b"&a [*a, *a]",
    b"*a",
    b"<<: *a",
    b"[" * 300,
    b"{" * 300,
    b"'",
    b'"',
    b"\n  - ",
    b"\n: ",
    BIG,
    b"-1",
    b"1e999",
    b"NaN",
    b"99/99/2024-99:99",
    b"9999-12-31T23:59:59Z",
    b"{{ cycler.__init__.__globals__ }}",
    b"\r\n",
    b"\t",
    b"\xef\xbb\xbf",
    b",",
    b"%",
]


def mutations(snippets: list[bytes]) -> st.SearchStrategy[tuple[str, int, object]]:
    return st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 10**6), st.sampled_from(snippets)),
        st.tuples(st.just("cut"), st.integers(0, 10**6), st.integers(1, 200)),
        st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
        st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    )


def mutate(seed: bytes, ops: list[tuple[str, int, object]]) -> bytes:
    data = bytearray(seed)
    for op, where, arg in ops:
        at = where % (len(data) + 1)
        if op == "insert":
            data[at:at] = arg  # type: ignore[assignment]
        elif op == "cut":
            del data[at : at + int(arg)]  # type: ignore[call-overload]
        elif op == "flip" and data:
            data[at % len(data)] ^= int(arg)  # type: ignore[call-overload]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


def run_dr(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue() + err.getvalue()


def tree_digest(root: Path) -> str:
    """The workspace's files and the catalog's rows (SQLite's own bookkeeping aside)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if not path.name.startswith("catalog.sqlite"):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    db = sqlite3.connect(root / "catalog.sqlite")
    try:
        for line in db.iterdump():
            h.update(line.encode())
    finally:
        db.close()
    return h.hexdigest()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("fuzz") / "ws"
    mp = pytest.MonkeyPatch()
    mp.setenv("DR_WORKSPACE", str(ws))
    mp.setenv("COLUMNS", "200")
    code, text = run_dr("init", "--inventory", str(ROOT / "examples" / "estate.yaml"))
    assert code == 0, text
    seed = ws.parent / "seed.json"
    seed.write_bytes(JSON_MANIFEST)  # the first import also records the inventory's sets
    code, text = run_dr("catalog", "import", str(seed))
    assert code == 0, text
    yield ws
    mp.undo()


COUNTS = {"tried": 0, "clear": 0, "tracebacks": 0}


def check(code: int, text: str) -> None:
    COUNTS["tried"] += 1
    assert code in EXIT_CODES, (code, text)
    assert "Traceback" not in text, text
    if code != 0:
        lines = [line for line in text.splitlines() if line.startswith("error")]
        assert lines, text  # at least one `error E...` line says what is wrong
        COUNTS["clear"] += 1


FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OPS = st.lists(mutations(SNIPPETS), min_size=1, max_size=4)
IMPORT_OPS = st.lists(mutations([s for s in SNIPPETS if s != BIG]), min_size=1, max_size=4)


@FUZZ
@given(ops=OPS)
def test_inventory(workspace: Path, tmp_path: Path, ops: list[tuple[str, int, object]]) -> None:
    path = tmp_path / "estate.yaml"
    path.write_bytes(mutate(ESTATE, ops))
    before = tree_digest(workspace)
    code, text = run_dr("inventory", "validate", str(path))
    check(code, text)
    assert tree_digest(workspace) == before


def _import(workspace: Path, path: Path, *extra: str) -> None:
    before = tree_digest(workspace)
    code, text = run_dr("catalog", "import", str(path), *extra)
    check(code, text)
    if code != 0:
        assert tree_digest(workspace) == before  # all or nothing


@FUZZ
@given(ops=IMPORT_OPS)
def test_json_import(workspace: Path, tmp_path: Path, ops: list[tuple[str, int, object]]) -> None:
    data = mutate(JSON_MANIFEST, ops)
    if b"[" * 300 in data or b"{" * 300 in data:
        data = data.replace(b"[" * 300, b"[").replace(b"{" * 300, b"{")  # see the xfail below
    path = tmp_path / "runs.json"
    path.write_bytes(data)
    _import(workspace, path, "--format", "json")


@FUZZ
@given(ops=IMPORT_OPS)
def test_csv_import(workspace: Path, tmp_path: Path, ops: list[tuple[str, int, object]]) -> None:
    path = tmp_path / "runs.csv"
    path.write_bytes(mutate(CSV_MANIFEST, ops))
    _import(workspace, path, "--format", "csv")


@FUZZ
@given(ops=IMPORT_OPS)
def test_wbadmin_import(
    workspace: Path, tmp_path: Path, ops: list[tuple[str, int, object]]
) -> None:
    path = tmp_path / "versions.txt"
    path.write_bytes(mutate(WBADMIN, ops))
    _import(workspace, path, "--format", "wbadmin", "--host", "DC1", "--set", "dc1-system-state")


def _plan_bytes() -> bytes:
    from engine.plan import Plan, Step, Target

    steps = [
        Step(id="a", kind="manual", host="operator", params={"instructions": "Look", "record": []}),
        Step(id="b", kind="approve", host="operator", needs=["a"],
             params={"reason": "why", "role": "exchange-admin"}),
    ]  # fmt: skip
    plan = Plan(scenario="t", target=Target(what="t"), created_from="0" * 64, steps=steps)
    return plan.sealed().canonical_json().encode()


PLAN = _plan_bytes()


@FUZZ
@given(ops=OPS, unsealed=st.booleans())
def test_plan(
    workspace: Path, tmp_path: Path, ops: list[tuple[str, int, object]], unsealed: bool
) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(mutate(PLAN, ops))
    out = tmp_path / "runbook.md"
    out.unlink(missing_ok=True)
    code, text = run_dr(
        "runbook", "render", str(path), "-o", str(out), *(["--unsealed"] if unsealed else [])
    )
    check(code, text)
    if code != 0:
        assert not out.exists()


@FUZZ
@given(ops=OPS)
def test_library(workspace: Path, tmp_path: Path, ops: list[tuple[str, int, object]]) -> None:
    lib = tmp_path / "lib"
    lib.mkdir(exist_ok=True)
    data = mutate(LIBRARY, ops).decode("utf-8", errors="replace").encode()  # see the xfail
    (lib / "common.yaml").write_bytes(data)
    code, text = run_dr("runbook", "kinds", "--library", str(lib))
    check(code, text)


def test_the_reported_inputs_are_one_clear_line(workspace: Path, tmp_path: Path) -> None:
    """The exact inputs issue 14 lists, each through its command."""
    bomb = b"a: &a [x,x,x,x,x,x,x,x,x]\n" + b"".join(
        b"%c: &%c [%s]\n" % (c, c, b",".join([b"*" + bytes([c - 1])] * 9))
        for c in range(ord("b"), ord("j"))
    )
    cases = {
        "nul.yaml": ESTATE.replace(b"organization:", b"organization:\x00", 1),
        "self.yaml": b"a: &a [*a]\n" + ESTATE,
        "bomb.yaml": bomb,
        "braces.yaml": b"a: " + b"{" * 5000 + b"\n",
        "brackets.yaml": b"a: " + b"[" * 20000 + b"\n",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        code, text = run_dr("inventory", "validate", str(tmp_path / name))
        check(code, text)
        assert code == 2, (name, text)
    (tmp_path / "plan.json").write_bytes(b"\xff\xfe" + PLAN)
    code, text = run_dr("runbook", "render", str(tmp_path / "plan.json"), "-f", "md", "-o", "-")
    check(code, text)
    assert code == 2 and "not UTF-8" in text
    (tmp_path / "v.txt").write_bytes(WBADMIN.replace(b"03/31/2026-04:00", b"99/99/2024-99:99"))
    code, text = run_dr(
        "catalog", "import", str(tmp_path / "v.txt"), "--format", "wbadmin",
        "--host", "DC1", "--set", "dc1-system-state",
    )  # fmt: skip
    check(code, text)
    assert code == 2 and "99/99/2024-99:99" in text
    (tmp_path / "g.txt").write_bytes(b"hello\nnot wbadmin at all\n")
    code, text = run_dr(
        "catalog", "import", str(tmp_path / "g.txt"), "--format", "wbadmin",
        "--host", "DC1", "--set", "dc1-system-state",
    )  # fmt: skip
    check(code, text)
    assert code != 0 and "no backup version found" in text


def test_deeply_nested_json_import_is_one_clear_line(workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_bytes(b'{"runs": ' + b"[" * 20000 + b"]" * 20000 + b"}")
    code, text = run_dr("catalog", "import", str(path), "--format", "json")
    check(code, text)


def test_a_non_utf8_library_file_is_one_clear_line(workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "x.yaml").write_bytes(b"\xff\xfe" + LIBRARY)
    code, text = run_dr("runbook", "kinds", "--library", str(tmp_path / "lib"))
    check(code, text)


def test_a_size_of_2_to_the_70_is_one_clear_line(workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(CSV_MANIFEST.replace(b",1000,", b"," + BIG + b","))
    code, text = run_dr("catalog", "import", str(path))
    check(code, text)
    assert code == 2


def test_a_run_dated_9999_is_refused(workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "future.csv"
    path.write_bytes(CSV_MANIFEST.replace(b"2024-05-06", b"9999-05-06"))
    code, text = run_dr("catalog", "import", str(path))
    check(code, text)
    assert code == 2


def test_zz_figures() -> None:
    """Printed for the closing note (pytest -s): inputs tried / clear errors / tracebacks."""
    print(
        f"\ninputs tried {COUNTS['tried']} / clear errors {COUNTS['clear']} / "
        f"tracebacks {COUNTS['tracebacks']}"
    )
    assert COUNTS["tried"] > 0

"""Every parameter reaches a shell through one quoting function; hostile values stay data."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import RenderError
from engine.plan import SecretRef, Step
from engine.render import literal, quote_cmd, quote_posix, quote_powershell, render_step
from engine.runbook import Library, Variant

HOSTILE = [
    "'; Remove-Item C:\\ -Recurse #",
    "$(Remove-Item C:\\ -Recurse)",
    "‘; Remove-Item C:\\ #’",
    "line one\nRemove-Item C:\\ -Recurse",
    "`$env:PATH` & calc.exe | more ^ > x < y",
    "a\u201ab\u201bc\u2018d\u2019e",
]
_PS_QUOTE_CHARS = "'\u2018\u2019\u201a\u201b"


def parse_powershell_single_quoted(text: str) -> tuple[str, str]:
    """What PowerShell's tokenizer reads from a single-quoted literal at the start of ``text``:
    (the value, the rest). Any of the five quote characters opens/closes; a doubled one is data."""
    assert text[0] in _PS_QUOTE_CHARS, text
    value, i = [], 1
    while i < len(text):
        ch = text[i]
        if ch in _PS_QUOTE_CHARS:
            if i + 1 < len(text) and text[i + 1] in _PS_QUOTE_CHARS:
                value.append(ch)
                i += 2
                continue
            return "".join(value), text[i + 1 :]
        value.append(ch)
        i += 1
    raise AssertionError("unterminated literal")


@given(st.text(alphabet=st.characters(exclude_characters="\x00"), max_size=60))
@settings(max_examples=300)
def test_powershell_literal_round_trips(value: str) -> None:
    parsed, rest = parse_powershell_single_quoted(quote_powershell(value) + "; Next")
    assert parsed == value
    assert rest == "; Next"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_inside_one_powershell_literal(value: str) -> None:
    parsed, rest = parse_powershell_single_quoted(quote_powershell(value))
    assert parsed == value and rest == ""


def test_powershell_doubles_every_quote_kind() -> None:
    assert quote_powershell("it's") == "'it''s'"
    assert quote_powershell("‘’‚‛") == "'‘‘’’‚‚‛‛'"
    assert literal(["a'b", 3, True, None], "powershell") == "@('a''b',3,$true,$null)"
    assert literal({"Alice": 2}, "powershell") == "@{'Alice'=2}"


def test_cmd_quotes_metacharacters_and_refuses_what_it_cannot() -> None:
    assert quote_cmd("a & b | c ^ d < e > f") == '"a & b | c ^ d < e > f"'
    assert quote_cmd("C:\\dir\\") == '"C:\\dir\\\\"'
    for bad in ('say "hi"', "%PATH%", "!x!", "two\nlines"):
        with pytest.raises(Exception, match="cannot be passed safely"):
            quote_cmd(bad)


def step(params: dict, kind: str = "k", secrets: list[SecretRef] | None = None) -> Step:
    return Step(id="s1", kind=kind, host="H1", params=params, secrets=secrets or [])


def test_bare_parameters_are_quoted_automatically() -> None:
    variant = Variant(action="powershell", command="Get-Item -LiteralPath {{ path }}")
    for value in HOSTILE:
        script = render_step(variant, step({"path": value})).command.script
        literal_text = script.removeprefix("Get-Item -LiteralPath ")
        assert parse_powershell_single_quoted(literal_text) == (value, "")


def test_concatenation_is_quoted_as_a_whole() -> None:
    variant = Variant(action="powershell", command="X {{ a ~ '\\\\' ~ b }}")
    assert render_step(variant, step({"a": "S'1", "b": "D"})).command.script == "X 'S''1\\D'"


def test_cmd_variant_refuses_hostile_value_naming_step_and_kind() -> None:
    variant = Variant(action="cmd", command="robocopy {{ src }} x")
    with pytest.raises(RenderError, match=r"step s1 \(kind copy, host H1\).*cmd.exe"):
        render_step(variant, step({"src": "%COMSPEC%"}, kind="copy"))
    ok = render_step(variant, step({"src": "a & del C:\\"}, kind="copy")).command
    assert ok.script == 'robocopy "a & del C:\\\\" x' and ok.shell == "cmd"


def test_missing_parameter_names_kind_step_and_param() -> None:
    variant = Variant(action="powershell", command="Mount-Database {{ db }}")
    with pytest.raises(RenderError, match=r"s1 \(kind mount.*parameter 'db'"):
        render_step(variant, step({}, kind="mount"))


def test_raw_only_passes_safe_constants() -> None:
    variant = Variant(action="cmd", command="eseutil /r {{ p | raw }}")
    assert render_step(variant, step({"p": "E00"})).command.script == "eseutil /r E00"
    with pytest.raises(RenderError, match="not a safe constant"):
        render_step(variant, step({"p": "E00 & calc"}))
    prefix = Variant(action="cmd", command="copy {{ p | logprefix }}*.log")
    with pytest.raises(RenderError, match="not a log prefix"):
        render_step(prefix, step({"p": "*"}))


def test_secrets_are_environment_references_never_values() -> None:
    ref = SecretRef(name="dsrm-password", location="vault:ad/dsrm", env="DR_SECRET_DSRM_PASSWORD")
    ps = Variant(
        action="powershell", secrets=["dsrm-password"], command="Use {{ secret('dsrm-password') }}"
    )
    rendered = render_step(ps, step({}, secrets=[ref]))
    assert rendered.command.script == "Use $env:DR_SECRET_DSRM_PASSWORD"
    assert rendered.secret_env == {"dsrm-password": "DR_SECRET_DSRM_PASSWORD"}
    assert rendered.secrets == [ref] and rendered.missing_secrets == []
    cmd = Variant(
        action="cmd", secrets=["dsrm-password"], command="x {{ secret('dsrm-password') }}"
    )
    assert render_step(cmd, step({})).command.script == "x %DR_SECRET_DSRM_PASSWORD%"
    assert render_step(cmd, step({})).missing_secrets == ["dsrm-password"]
    unlisted = Variant(action="powershell", command="x {{ secret('kms') }}")
    with pytest.raises(RenderError, match="does not list"):
        render_step(unlisted, step({}))


def test_verification_patterns_escape_parameters_and_expectations_render() -> None:
    variant = Variant.model_validate(
        {
            "action": "check",
            "command": "Get-Thing {{ name }}",
            "verify": {
                "command": "Get-Thing {{ name }}",
                "parser": "regex",
                "patterns": ["Name: {{ name }}$"],
                "expect": {"x": "{{ name }}"},
            },
        }
    )
    rendered = render_step(variant, step({"name": "a.b(c)"}))
    assert rendered.verify_check.patterns == [re.escape("a.b(c)").join(["Name: ", "$"])]
    assert rendered.verify_check.expect == {"x": "a.b(c)"}
    assert rendered.verify.script == "Get-Thing 'a.b(c)'"


def test_library_command_with_hostile_values_stays_data() -> None:
    library = Library.load()
    for value in HOSTILE:
        s = Step(
            id="d",
            kind="dismount-database",
            host="EX16",
            params={"server": "EX16", "sg": value, "db": value},
            platform={"exchange": "2016"},
        )
        script = render_step(library.variant(s), s).command.script
        tail = script.split("-Identity ", 1)[1]
        assert parse_powershell_single_quoted(tail) == (value, " -Confirm:$false")


@pytest.mark.skipif(sys.platform == "win32", reason="runs /bin/sh")
@pytest.mark.parametrize("value", [*HOSTILE, "$(touch pwned)", "`touch pwned`", "a;touch pwned"])
def test_hostile_values_arrive_as_data_through_the_local_transport(value: str, tmp_path) -> None:
    from engine.transports.local import LocalTransport

    variant = Variant(action="check", shell="posix", command="cd {{ d }} && printf '%s' {{ v }}")
    command = render_step(variant, step({"d": str(tmp_path), "v": value})).command
    assert command.shell == "posix"
    result = LocalTransport().run(command, timeout=20)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.decode() == value
    assert not (tmp_path / "pwned").exists()
    assert quote_posix(value) in command.script

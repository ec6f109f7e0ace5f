"""Flag templates: only known placeholders, literal braces, one flag -> one argv entry."""

# Test names state what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring

from __future__ import annotations

from pathlib import Path

import pytest

from orch_tui.core.templates import (PLACEHOLDERS, TemplateError, check_suffix, check_template,
                                     expand, output_path, printable)

VALUES = {
    "input_file": "/data/video1.mp4",
    "output_file": "/out/video1_720p.mp4",
    "input_name": "video1.mp4",
    "input_stem": "video1",
    "input_ext": ".mp4",
    "input_dir": "/data",
    "output_dir": "/out",
    "index": "7",
}

HOSTILE_NAMES = [
    "/data/my video.mp4",
    "/data/it's \"quoted\".mp4",
    "/data/a;b.mp4",
    "/data/$(rm -rf ~).mp4",
    "/data/`id`.mp4",
    "/data/vidéo 日本語 🎬.mp4",
    "/data/-rf.mp4",
    "/data/{index}.mp4",
    "/data/{{x}}.mp4",
    "/data/*.mp4",
    "/data/tab\there.mp4",
]


def test_placeholder_names_match_the_contract() -> None:
    assert PLACEHOLDERS == ("input_file", "output_file", "input_name", "input_stem", "input_ext",
                            "input_dir", "output_dir", "index")


@pytest.mark.parametrize("text, used", [
    ("-i", frozenset()),
    ("scale=1280:720", frozenset()),
    ("{input_file}", frozenset({"input_file"})),
    ("{input_dir}/{input_stem}.srt", frozenset({"input_dir", "input_stem"})),
    ("{index}-{index}", frozenset({"index"})),
    ("{{input_file}}", frozenset()),
    ("", frozenset()),
])
def test_check_template_reports_used_placeholders(text: str, used: frozenset[str]) -> None:
    assert check_template(text) == used


@pytest.mark.parametrize("text", [
    "{input_file.__class__}",
    "{input_file.__class__.__init__.__globals__}",
    "{0}",
    "{input_file!r}",
    "{input_file:>20}",
    "{input_file[0]}",
    "{ input_file }",
    "{INPUT_FILE}",
    "{foo}",
    "{input}",
])
def test_unknown_placeholders_are_rejected(text: str) -> None:
    with pytest.raises(TemplateError) as info:
        check_template(text)
    message = str(info.value)
    assert "unknown placeholder" in message
    assert "known placeholders: {input_file}, {output_file}" in message
    assert "{index}" in message


def test_unknown_placeholder_suggests_the_close_name() -> None:
    with pytest.raises(TemplateError, match=r"did you mean \{input_file\}\?"):
        check_template("{input_fle}")


@pytest.mark.parametrize("text, fragment", [
    ("{input_file", "unbalanced '{' at character 1"),
    ("-i {", "unbalanced '{' at character 4"),
    ("{a{input_file}", "unbalanced '{'"),
    ("input_file}", "unbalanced '}' at character 11"),
    ("}", "unbalanced '}'"),
    ("{input_file}}", "unbalanced '}'"),
    ("{}", "empty placeholder"),
    ("x{}y", "empty placeholder {} at character 2"),
])
def test_malformed_templates(text: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        check_template(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize("text, expected", [
    ("{{literal}}", "{literal}"),
    ("{{{input_stem}}}", "{video1}"),
    ("a}}b{{c", "a}b{c"),
    ("{{input_file}}", "{input_file}"),
    ("select='eq(n\\,0)'", "select='eq(n\\,0)'"),
])
def test_escaped_braces(text: str, expected: str) -> None:
    assert expand(text, VALUES) == expected


def test_every_placeholder_expands() -> None:
    text = "|".join("{" + name + "}" for name in PLACEHOLDERS)
    assert expand(text, VALUES) == "|".join(VALUES[name] for name in PLACEHOLDERS)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_values_are_inserted_verbatim(name: str) -> None:
    values = dict(VALUES, input_file=name)
    assert expand("{input_file}", values) == name
    assert expand("file:{input_file}", values) == "file:" + name


def test_missing_value_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="no value for placeholder {index}"):
        expand("{index}", {"input_file": "x"})


def test_template_error_is_a_value_error() -> None:
    assert issubclass(TemplateError, ValueError)


@pytest.mark.parametrize("source, suffix, expected", [
    ("/data/video1.mp4", "_720p", "/path/to/output/video1_720p.mp4"),
    ("/data/video1.mp4", "", "/path/to/output/video1.mp4"),
    ("/data/archive.tar.gz", "_x", "/path/to/output/archive.tar_x.gz"),
    ("/data/README", "_x", "/path/to/output/README_x"),
    ("/data/my video.MOV", ".small", "/path/to/output/my video.small.MOV"),
])
def test_output_path_follows_the_seed_naming(source: str, suffix: str, expected: str) -> None:
    assert output_path(Path(source), Path("/path/to/output"), suffix) == Path(expected)


@pytest.mark.parametrize("suffix", ["", "_720p", "-small", ".v2", " copy", "_日本"])
def test_good_suffixes(suffix: str) -> None:
    check_suffix(suffix)


@pytest.mark.parametrize("suffix, fragment", [
    ("/x", "'/'"),
    ("_a/b", "'/'"),
    ("a\\b", "'\\\\'"),
    ("..", "'..'"),
    ("_..", "'..'"),
    ("x\0", "NUL"),
])
def test_bad_suffixes(suffix: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        check_suffix(suffix)
    assert fragment in str(info.value)


@pytest.mark.parametrize("text, shown", [
    ("plain é 日本", "plain é 日本"),
    ("a\nb", "a\\nb"),
    ("tab\there", "tab\\there"),
    ("\x1b[31mred", "\\x1b[31mred"),
])
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_unknown_placeholder_message_stays_on_one_line() -> None:
    with pytest.raises(TemplateError) as info:
        check_template("{input\n_file\x1b}")
    assert str(info.value).isprintable()
    assert "{input\\n_file\\x1b}" in str(info.value)


def test_control_characters_in_suffix() -> None:
    with pytest.raises(TemplateError, match="control characters"):
        check_suffix("_a\nb")

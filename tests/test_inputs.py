"""The input list: one path a line, problems recorded per entry, list-level problems raised."""

# Test names state what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from orch_tui.core.errors import ConfigError
from orch_tui.core.inputs import Duplicate, InputEntry, InputList, read_input_list

KEY = "directories.input_file_list"
T = TypeVar("T")


@pytest.fixture(name="folder")
def fixture_folder() -> Iterator[Path]:
    """A world-traversable folder, so permission checks can run as an unprivileged user."""
    path = Path(tempfile.mkdtemp(prefix="orch-inputs-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        # Top-down walk: each folder is opened up before os.walk tries to list it.
        for root, folders, _ in os.walk(path):
            for name in folders:
                if not os.path.islink(os.path.join(root, name)):
                    os.chmod(os.path.join(root, name), 0o755)
        shutil.rmtree(path)


def as_unprivileged(func: Callable[[], T]) -> T:
    """Call `func` as an ordinary user and return its (picklable) result.

    Root bypasses permission bits, which would make "unreadable" untestable; so as root a forked
    child drops to nobody (65534) and sends the result back through a pipe.
    """
    if os.geteuid() != 0:
        return func()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 3  # could not drop privileges
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            code = 4  # func or pickling crashed
            try:
                outcome = ("returned", func())
            except Exception as exc:  # pylint: disable=broad-exception-caught
                outcome = ("raised", repr(exc))
            with os.fdopen(writer, "wb") as pipe:
                pickle.dump(outcome, pipe)
            code = 0
        finally:
            os._exit(code)  # pylint: disable=protected-access
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 3:
        pytest.skip("could not drop root privileges to check permissions")
    assert code == 0, f"the unprivileged child crashed (exit {code})"
    kind, value = pickle.loads(payload)
    assert kind == "returned", f"raised as an unprivileged user: {value}"
    return value


def touch(path: Path, data: bytes = b"x") -> Path:
    """Create a file (and its folders) with some content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_list(folder: Path, text: str, name: str = "inputs.txt") -> Path:
    """Write an input list exactly as given (no newline translation)."""
    path = folder / name
    path.write_bytes(text.encode("utf-8"))
    return path


def list_error(path: Path) -> ConfigError:
    """The ConfigError for a bad list; it must name the list and the config key."""
    with pytest.raises(ConfigError) as info:
        read_input_list(path)
    error = info.value
    assert error.key == KEY
    assert error.path == path
    assert str(error).startswith(f"{path}")
    assert "\n" not in str(error)
    return error


def error_text(path: Path) -> str:
    """str() of the ConfigError for `path`, or '' (picklable, for `as_unprivileged`)."""
    try:
        read_input_list(path)
    except ConfigError as exc:
        return f"{exc.key}|{exc}"
    return ""


# --- parsing -----------------------------------------------------------------------------------


def test_basic_list(folder: Path) -> None:
    first = touch(folder / "media" / "video1.mp4", b"12345")
    second = touch(folder / "media" / "video2.mp4", b"123")
    listing = write_list(folder, f"{first}\nmedia/video2.mp4\n")
    inputs = read_input_list(listing)
    assert inputs.path == listing
    assert inputs.entries == (
        InputEntry(line=1, raw=str(first), location=str(first), size=5, problem=None),
        InputEntry(line=2, raw="media/video2.mp4", location=str(second), size=3, problem=None),
    )
    assert inputs.valid == inputs.entries
    assert not inputs.problems
    assert not inputs.duplicates
    assert inputs.total_size == 8


def test_accepts_a_string_path(folder: Path) -> None:
    touch(folder / "a.mp4")
    assert len(read_input_list(str(write_list(folder, "a.mp4\n"))).entries) == 1


def test_comments_blank_lines_and_crlf(folder: Path) -> None:
    touch(folder / "a.mp4")
    touch(folder / "b.mp4")
    text = "# header\r\n\r\na.mp4\r\n   \r\n\t\r\n   # indented comment\r\nb.mp4\r\n"
    inputs = read_input_list(write_list(folder, text))
    assert [(entry.line, entry.raw, entry.path.name) for entry in inputs.entries] == [
        (3, "a.mp4", "a.mp4"),
        (7, "b.mp4", "b.mp4"),
    ]
    assert not inputs.problems


def test_last_line_without_newline(folder: Path) -> None:
    touch(folder / "a.mp4")
    assert read_input_list(write_list(folder, "a.mp4")).entries[0].path == folder / "a.mp4"


def test_byte_order_mark_is_ignored(folder: Path) -> None:
    touch(folder / "a.mp4")
    listing = folder / "inputs.txt"
    listing.write_bytes(b"\xef\xbb\xbfa.mp4\n")
    assert read_input_list(listing).entries[0].path == folder / "a.mp4"


def test_relative_paths_use_the_list_folder_not_cwd(folder: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    touch(folder / "lists" / "here.mp4")
    touch(folder / "up.mp4")
    monkeypatch.chdir(tmp_path)
    inputs = read_input_list(write_list(folder / "lists", "here.mp4\n../up.mp4\n"))
    assert [entry.path
            for entry in inputs.entries] == [folder / "lists" / "here.mp4", folder / "up.mp4"]
    assert all(entry.path.is_absolute() for entry in inputs.entries)


def test_relative_list_path(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(folder / "a.mp4")
    write_list(folder, "a.mp4\n")
    monkeypatch.chdir(folder)
    inputs = read_input_list(Path("inputs.txt"))
    assert inputs.path == folder / "inputs.txt"
    assert inputs.entries[0].path == folder / "a.mp4"


def test_home_is_expanded(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(folder / "home" / "clip.mp4")
    monkeypatch.setenv("HOME", str(folder / "home"))
    inputs = read_input_list(write_list(folder, "~/clip.mp4\n"))
    assert inputs.entries[0].path == folder / "home" / "clip.mp4"
    assert inputs.entries[0].raw == "~/clip.mp4"


@pytest.mark.parametrize("name", [
    "my video.mp4",
    "it's \"quoted\".mp4",
    "a;b.mp4",
    "$(rm -rf ~).mp4",
    "`id`.mp4",
    "vidéo 日本語 🎬.mp4",
    "-rf.mp4",
    "--help",
    "a#b.mp4",
    "{input_file}.mp4",
    "  inner  spaces  .mp4",
])
def test_awkward_names_are_kept_exactly(folder: Path, name: str) -> None:
    touch(folder / name)
    entry = read_input_list(write_list(folder, name + "\n")).entries[0]
    assert entry.raw == name
    assert entry.path == folder / name
    assert entry.problem is None
    assert str(entry.path).startswith("/"), "an input must never look like an option"


def test_hash_after_a_dot_slash_is_a_file_not_a_comment(folder: Path) -> None:
    touch(folder / "#1.mp4")
    inputs = read_input_list(write_list(folder, "#1.mp4\n./#1.mp4\n"))
    assert [(entry.line, entry.path) for entry in inputs.entries] == [(2, folder / "#1.mp4")]


def test_trailing_spaces_exact_name_wins(folder: Path) -> None:
    touch(folder / "ends with space.mp4 ")
    touch(folder / "ends with space.mp4")
    entry = read_input_list(write_list(folder, "ends with space.mp4 \n")).entries[0]
    assert entry.path == folder / "ends with space.mp4 "


def test_stray_spaces_fall_back_to_the_trimmed_name(folder: Path) -> None:
    clip = touch(folder / "clip.mp4")
    inputs = read_input_list(write_list(folder, f"clip.mp4  \n\t {clip}\n"))
    assert inputs.entries[0].path == clip
    assert inputs.entries[0].raw == "clip.mp4  "
    assert inputs.duplicates == (Duplicate(line=2, first_line=1, path=clip), )


def test_symlinks_are_not_resolved(folder: Path) -> None:
    target = touch(folder / "real.mp4", b"abc")
    (folder / "link.mp4").symlink_to(target)
    entry = read_input_list(write_list(folder, "link.mp4\n")).entries[0]
    assert entry.path == folder / "link.mp4"
    assert entry.size == 3


def test_a_dot_dot_after_a_symlinked_folder_names_what_the_kernel_opens(folder: Path) -> None:
    """`deep/..` is the folder above the one `deep` leads to, not `folder` itself, as `cat`
    reads it; the folders of a line without `..` keep their symlinks."""
    touch(folder / "other" / "x.mp4", b"physical")
    touch(folder / "x.mp4", b"lexical")
    (folder / "other" / "deep").mkdir()
    (folder / "sl").symlink_to(folder / "other" / "deep")
    (folder / "sl2").symlink_to(folder / "other")
    entries = read_input_list(write_list(folder, "sl/../x.mp4\nsl2/x.mp4\nsl/../\n")).entries
    real_other = os.path.realpath(folder / "other")
    assert [(e.location, e.size, e.problem) for e in entries] == [
        (f"{real_other}/x.mp4", 8, None),
        (str(folder / "sl2" / "x.mp4"), 8, None),
        (real_other, None, "directory"),
    ]


def test_duplicates_are_reported_and_kept_once(folder: Path) -> None:
    clip = touch(folder / "a.mp4")
    touch(folder / "b.mp4")
    (folder / "sub").mkdir()
    text = f"a.mp4\nb.mp4\n./a.mp4\nsub/../a.mp4\n{clip}\n"
    inputs = read_input_list(write_list(folder, text))
    assert [entry.line for entry in inputs.entries] == [1, 2]
    assert inputs.duplicates == (
        Duplicate(line=3, first_line=1, path=clip),
        Duplicate(line=4, first_line=1, path=clip),
        Duplicate(line=5, first_line=1, path=clip),
    )


def test_missing_and_directory_entries_are_recorded(folder: Path) -> None:
    touch(folder / "ok.mp4", b"1234")
    (folder / "adir").mkdir()
    touch(folder / "file")
    text = "gone.mp4\nadir\nok.mp4\nfile/below.mp4\n"
    inputs = read_input_list(write_list(folder, text))
    assert [(entry.line, entry.problem, entry.size) for entry in inputs.entries] == [
        (1, "missing", None),
        (2, "directory", None),
        (3, None, 4),
        (4, "missing", None),
    ]
    assert [entry.line for entry in inputs.problems] == [1, 2, 4]
    assert [entry.line for entry in inputs.valid] == [3]
    assert inputs.total_size == 4


def test_broken_symlink_is_missing(folder: Path) -> None:
    (folder / "dangling.mp4").symlink_to(folder / "nowhere.mp4")
    assert read_input_list(write_list(folder, "dangling.mp4\n")).entries[0].problem == "missing"


def test_unreadable_entries(folder: Path) -> None:
    touch(folder / "ok.mp4")
    touch(folder / "locked.mp4").chmod(0o000)
    touch(folder / "closed" / "inside.mp4")
    (folder / "closed").chmod(0o000)
    listing = write_list(folder, "ok.mp4\nlocked.mp4\nclosed/inside.mp4\n")
    inputs = as_unprivileged(lambda: read_input_list(listing))
    assert [(entry.path.name, entry.problem) for entry in inputs.entries] == [
        ("ok.mp4", None),
        ("locked.mp4", "unreadable"),
        ("inside.mp4", "unreadable"),
    ]


def test_input_list_dataclass_defaults() -> None:
    entry = InputEntry(line=1, raw="a", location="/a", size=2, problem=None)
    inputs = InputList(path=Path("/l"), entries=(entry, ))
    assert isinstance(inputs.duplicates, tuple) and not inputs.duplicates
    assert inputs.total_size == 2


# --- list-level errors -------------------------------------------------------------------------


def test_list_missing(folder: Path) -> None:
    assert "input list not found" in str(list_error(folder / "nope.txt"))


def test_list_is_a_directory(folder: Path) -> None:
    (folder / "dir.txt").mkdir()
    assert "is a directory" in str(list_error(folder / "dir.txt"))


def test_list_unreadable(folder: Path) -> None:
    listing = write_list(folder, "a.mp4\n")
    listing.chmod(0o000)
    message = as_unprivileged(lambda: error_text(listing))
    assert message.startswith(f"{KEY}|{listing}: {KEY}: ")
    assert "permission denied" in message


def test_list_with_nul_bytes(folder: Path) -> None:
    listing = folder / "inputs.txt"
    listing.write_bytes(b"a.mp4\nb.mp4\n\x00\x01\x02binary")
    error = list_error(listing)
    assert error.line == 3
    assert "NUL bytes" in str(error)
    assert f"{listing}:3: {KEY}:" in str(error)


def test_list_not_utf8(folder: Path) -> None:
    listing = folder / "inputs.txt"
    listing.write_bytes(b"a.mp4\n# fine\ncaf\xe9.mp4\n")
    error = list_error(listing)
    assert error.line == 3
    assert "not valid UTF-8 (byte 0xe9)" in str(error)


@pytest.mark.parametrize("text", ["", "\n\n", "  \r\n\t\n"])
def test_list_empty(folder: Path, text: str) -> None:
    assert "input list is empty" in str(list_error(write_list(folder, text)))


def test_list_only_comments(folder: Path) -> None:
    error = list_error(write_list(folder, "# one\n\n  # two\n"))
    assert "names no files" in str(error)


def test_overlong_name_is_missing(folder: Path) -> None:
    entry = read_input_list(write_list(folder, "n" * 300 + ".mp4\n")).entries[0]
    assert entry.problem == "missing"


def test_list_path_with_nul_byte(folder: Path) -> None:
    with pytest.raises(ConfigError, match="invalid input list file name"):
        read_input_list(folder / "bad\0name.txt")


def test_progress_counts_the_list_s_lines_as_wc_l_does(folder: Path) -> None:
    """A final newline ends the last line; it starts no empty one (100,001 of 100,000)."""
    for i in range(12):
        touch(folder / f"{i}.mp4")
    calls: list[tuple[int, int]] = []
    listing = write_list(folder, "".join(f"{i}.mp4\n" for i in range(12)))
    assert len(read_input_list(listing, lambda done, total: calls.append(
        (done, total))).entries) == 12
    assert calls[-1] == (12, 12)
    calls.clear()
    read_input_list(write_list(folder, "0.mp4\n1.mp4"), lambda d, t: calls.append((d, t)))
    assert calls[-1] == (2, 2), "no final newline: the same count"

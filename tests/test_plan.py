"""Planning: one job per valid input, exact argv, safe names, collisions refused, no disk writes."""

# Test names state what each test checks; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring

from __future__ import annotations

import re
import os
import shlex
import subprocess
import textwrap
from pathlib import Path

import pytest

from orch_tui.core.config import BinaryConfig, Config, DirectoriesConfig, load_config
from orch_tui.core.errors import ConfigError
from orch_tui.core.inputs import InputEntry, InputList, read_input_list
from orch_tui.core.plan import JobSpec, Plan, build_plan, safe_log_stem, shell_quote

SEED_FLAGS = ("-i", "{input_file}", "{output_file}")


def seed_config(flags: tuple[str, ...] = SEED_FLAGS, suffix: str = "_720p") -> Config:
    """The seed's example, built in memory (its paths need not exist)."""
    return Config(path=Path("/etc/orch/config.yaml"),
                  binary=BinaryConfig(path=Path("/usr/bin/ffmpeg"), declared="ffmpeg", flags=flags),
                  directories=DirectoriesConfig(input_file_list=Path("/etc/orch/inputs.txt"),
                                                output_dir=Path("/path/to/output"),
                                                output_suffix=suffix))


def listed(*paths: str) -> InputList:
    """An in-memory input list of valid entries."""
    entries = tuple(
        InputEntry(line=n, raw=p, location=p, size=100 * n, problem=None)
        for n, p in enumerate(paths, start=1))
    return InputList(path=Path("/etc/orch/inputs.txt"), entries=entries, duplicates=())


def project(tmp_path: Path,
            listing: str,
            flags: str = '["-i", "{input_file}", "{output_file}"]',
            suffix: str = "_720p") -> Plan:
    """Write a real config, tool and list under tmp_path, load them and plan."""
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n", encoding="utf-8")
    tool.chmod(0o755)
    (tmp_path / "inputs.txt").write_text(listing, encoding="utf-8")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(textwrap.dedent(f"""\
        binary:
          path: ./tool
          flags: {flags}
        directories:
          input_file_list: inputs.txt
          output_dir: out
          output_suffix: "{suffix}"
        """),
                           encoding="utf-8")
    config = load_config(config_path)
    return build_plan(config, read_input_list(config.directories.input_file_list))


def make(path: Path, size: int = 1) -> Path:
    """A real input file of `size` bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def test_seed_example_expansion() -> None:
    plan = build_plan(seed_config(), listed("/data/video1.mp4"))
    job = plan.jobs[0]
    assert job.display_argv == ("/usr/bin/ffmpeg", "-i", "/data/video1.mp4",
                                "/path/to/output/video1_720p.mp4")
    assert shell_quote(
        job.display_argv[1:]) == ("-i /data/video1.mp4 /path/to/output/video1_720p.mp4")
    assert job.output_path == Path("/path/to/output/video1_720p.mp4")
    # The temporary output keeps the final name, in this run's own private folder.
    temp = Path(f"/path/to/output/.orch-tui/tmp/{plan.run_token}/video1_720p.mp4")
    assert len(plan.run_token) == 16 and plan.run_temp_dir == temp.parent
    assert job.temp_output_path == temp
    assert job.argv == ("/usr/bin/ffmpeg", "-i", "/data/video1.mp4", str(temp))
    assert job.log_path == Path("/path/to/output/.orch-tui/logs/000/00001-video1.log")
    assert job.name == "video1.mp4"
    assert (job.job_id, job.input_size) == (1, 100)
    assert plan.state_dir == Path("/path/to/output/.orch-tui")
    assert plan.existing == frozenset()


def test_every_placeholder() -> None:
    flags = ("{input_file}", "{output_file}", "{input_name}", "{input_stem}", "{input_ext}",
             "{input_dir}", "{output_dir}", "{index}", "{{index}}", "{input_dir}/{input_stem}.srt")
    plan = build_plan(seed_config(flags), listed("/data/a.mkv", "/data/sub/b.c.mp4"))
    assert plan.jobs[1].display_argv[1:] == ("/data/sub/b.c.mp4", "/path/to/output/b.c_720p.mp4",
                                             "b.c.mp4", "b.c", ".mp4", "/data/sub",
                                             "/path/to/output", "2", "{index}", "/data/sub/b.c.srt")


def test_no_output_file_placeholder_means_no_temp_name() -> None:
    job = build_plan(seed_config(("-i", "{input_file}", "-f", "null", "-")),
                     listed("/data/a.mp4")).jobs[0]
    assert job.temp_output_path is None
    assert job.argv == job.display_argv
    assert job.output_path == Path("/path/to/output/a_720p.mp4")


def bash_words(line: str) -> list[str]:
    """The argv bash makes of a shell_quote line (shlex knows no `$'...'`)."""
    out = subprocess.run(["bash", "-c", f"printf '%s\\0' {line}"], capture_output=True,
                         check=True).stdout
    return [os.fsdecode(word) for word in out.split(b"\0")[:-1]]


@pytest.mark.parametrize("name", [
    "my video.mp4",
    "it's \"quoted\".mp4",
    "a;b.mp4",
    "$(rm -rf ~).mp4",
    "`id`.mp4",
    "vidéo 日本語 🎬.mp4",
    "-rf.mp4",
    "{index}.mp4",
    "a  b\tc.mp4",
])
def test_awkward_names_stay_one_argv_entry(tmp_path: Path, name: str) -> None:
    source = make(tmp_path / "in" / name)
    plan = project(tmp_path, f"in/{name}\n")
    job = plan.jobs[0]
    assert len(job.argv) == 4
    assert job.argv[2] == str(source)
    assert job.argv[2].startswith("/")
    assert job.display_argv[3] == str(tmp_path / "out" / f"{source.stem}_720p{source.suffix}")
    assert bash_words(shell_quote(job.display_argv)) == list(job.display_argv)
    assert re.fullmatch(r"00001-[A-Za-z0-9._-]{1,60}\.log", job.log_path.name)


def test_real_files_end_to_end(tmp_path: Path) -> None:
    make(tmp_path / "in" / "a.mp4", 10)
    make(tmp_path / "in" / "b.mp4", 20)
    make(tmp_path / "in" / "c.mp4", 30)
    (tmp_path / "in" / "folder").mkdir()
    listing = "# inputs\nin/a.mp4\nin/missing.mp4\nin/folder\nin/b.mp4\nin/a.mp4\nin/c.mp4\n"
    plan = project(tmp_path, listing)
    assert [(job.job_id, job.name, job.input_size) for job in plan.jobs] == [
        (1, "a.mp4", 10),
        (2, "b.mp4", 20),
        (3, "c.mp4", 30),
    ]
    assert [job.log_path.name for job in plan.jobs] == ["00001-a.log", "00002-b.log", "00003-c.log"]
    assert all(job.log_path.parent == tmp_path / "out" / ".orch-tui" / "logs" / "000"
               for job in plan.jobs)
    assert plan.state_dir == tmp_path / "out" / ".orch-tui"
    assert len(plan.inputs.problems) == 2
    assert len(plan.inputs.duplicates) == 1
    assert not (tmp_path / "out").exists(), "planning must not create anything"


def test_existing_outputs_are_reported(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        make(tmp_path / "in" / f"{name}.mp4")
    make(tmp_path / "out" / "b_720p.mp4")
    make(tmp_path / "out" / ".c_720p.orch-tmp.mp4")
    plan = project(tmp_path, "in/a.mp4\nin/b.mp4\nin/c.mp4\n")
    assert plan.existing == frozenset({2})
    assert sorted(p.name
                  for p in (tmp_path / "out").iterdir()) == [".c_720p.orch-tmp.mp4", "b_720p.mp4"]


def test_collision_names_both_inputs_and_lines(tmp_path: Path) -> None:
    first = make(tmp_path / "in" / "one" / "clip.mp4")
    second = make(tmp_path / "in" / "two" / "clip.mp4")
    with pytest.raises(ConfigError) as info:
        project(tmp_path, "# two folders, one name\nin/one/clip.mp4\nin/two/clip.mp4\n")
    error = info.value
    message = str(error)
    assert error.key == "directories.output_suffix"
    assert error.path == tmp_path / "config.yaml"
    assert (error.line, error.column) == (7, 3)
    assert f"line 2 ({first})" in message
    assert f"line 3 ({second})" in message
    assert str(tmp_path / "out" / "clip_720p.mp4") in message
    assert str(tmp_path / "inputs.txt") in message
    assert not (tmp_path / "out").exists()


def test_same_stem_different_extension_is_no_collision(tmp_path: Path) -> None:
    make(tmp_path / "in" / "clip.mp4")
    make(tmp_path / "in" / "clip.mkv")
    plan = project(tmp_path, "in/clip.mp4\nin/clip.mkv\n")
    assert [job.output_path.name for job in plan.jobs] == ["clip_720p.mp4", "clip_720p.mkv"]


def test_missing_inputs_do_not_collide(tmp_path: Path) -> None:
    make(tmp_path / "in" / "one" / "clip.mp4")
    plan = project(tmp_path, "in/one/clip.mp4\nin/two/clip.mp4\n")
    assert len(plan.jobs) == 1


def test_output_that_would_overwrite_an_input_is_refused(tmp_path: Path) -> None:
    make(tmp_path / "out" / "clip.mp4")
    with pytest.raises(ConfigError) as info:
        project(tmp_path, "out/clip.mp4\n", suffix="")
    assert info.value.key == "directories.output_dir"
    assert "would overwrite the input on line 1" in str(info.value)


def test_output_that_would_overwrite_another_input_is_refused(tmp_path: Path) -> None:
    make(tmp_path / "in" / "clip.mp4")
    make(tmp_path / "out" / "clip_720p.mp4")
    with pytest.raises(ConfigError) as info:
        project(tmp_path, "in/clip.mp4\nout/clip_720p.mp4\n")
    assert "the output for line 1" in str(info.value)
    assert "input on line 2" in str(info.value)


@pytest.mark.parametrize("stem, expected", [
    ("video1", "video1"),
    ("my video (1)", "my_video__1_"),
    ("vidéo;$(rm)", "vid_o___rm_"),
    ("", "input"),
    ("x" * 200, "x" * 60),
    ("-rf", "-rf"),
])
def test_safe_log_stem(stem: str, expected: str) -> None:
    assert safe_log_stem(stem) == expected


def test_long_unicode_names_get_short_distinct_logs() -> None:
    # 240-byte names (the longest whose output name, with _720p, still fits 255 bytes).
    plan = build_plan(seed_config(), listed("/d/" + "é" * 120 + ".mp4", "/d/" + "é" * 119 + ".mp4"))
    names = [job.log_path.name for job in plan.jobs]
    assert names == ["00001-" + "_" * 60 + ".log", "00002-" + "_" * 60 + ".log"]


def test_an_output_name_longer_than_name_max_is_a_preflight_error_naming_the_input() -> None:
    long_input = "/d/" + "x" * 250 + ".mp4"  # 254 bytes: a legal input name
    with pytest.raises(ConfigError) as caught:
        build_plan(seed_config(), listed("/d/ok.mp4", long_input))
    message = str(caught.value)
    assert "line 2" in message and long_input in message and "259 bytes" in message
    assert caught.value.key == "directories.output_suffix"


def test_job_numbers_are_zero_padded_beyond_nine() -> None:
    plan = build_plan(seed_config(), listed(*(f"/d/v{n}.mp4" for n in range(1, 13))))
    assert [job.job_id for job in plan.jobs] == list(range(1, 13))
    assert plan.jobs[11].log_path.name == "00012-v12.log"
    assert plan.jobs[11].display_argv[-1] == "/path/to/output/v12_720p.mp4"


def test_empty_plan_when_nothing_is_valid() -> None:
    entry = InputEntry(line=1, raw="/d/x.mp4", location="/d/x.mp4", size=None, problem="missing")
    plan = build_plan(seed_config(), InputList(path=Path("/l"), entries=(entry, )))
    assert isinstance(plan.jobs, tuple) and not plan.jobs
    assert plan.existing == frozenset()


def test_shell_quote() -> None:
    argv = ("/usr/bin/ffmpeg", "-i", "/d/it's a $(x).mp4", "")
    assert shell_quote(argv) == "/usr/bin/ffmpeg -i '/d/it'\"'\"'s a $(x).mp4' ''"
    assert shlex.split(shell_quote(argv)) == list(argv)


def test_shell_quote_writes_what_does_not_print_in_ansi_c_quotes() -> None:
    argv = ("x", "a\tb'c\\d\n", "\x1b[2J\u00a0", os.fsdecode(b"\xff.mp4"), "\ud800")
    assert bash_words(shell_quote(argv[:4])) == list(argv[:4])
    assert shell_quote(argv) == ("x $'a\\tb\\'c\\\\d\\n' $'\\x1b[2J\\xc2\\xa0' $'\\xff.mp4' "
                                 "$'\\xed\\xa0\\x80'")


def test_jobspec_is_frozen() -> None:
    job = build_plan(seed_config(), listed("/d/a.mp4")).jobs[0]
    assert isinstance(job, JobSpec)
    with pytest.raises(AttributeError):
        job.job_id = 5  # type: ignore[misc]  # the write a frozen job refuses is the point


def test_collision_message_escapes_control_characters() -> None:
    with pytest.raises(ConfigError) as info:
        build_plan(seed_config(), listed("/a/x\x1b[2J.mp4", "/b/x\x1b[2J.mp4"))
    assert str(info.value).isprintable()
    assert "/a/x\\x1b[2J.mp4" in str(info.value)


def test_an_input_that_is_a_symlink_to_an_existing_output_is_refused(tmp_path: Path) -> None:
    # in/b.mp4 -> out/a_720p.mp4: writing a's output would replace the file b names.
    make(tmp_path / "in" / "a.mp4")
    target = make(tmp_path / "out" / "a_720p.mp4")
    (tmp_path / "in" / "b.mp4").symlink_to(target)
    with pytest.raises(ConfigError) as info:
        project(tmp_path, "in/a.mp4\nin/b.mp4\n")
    assert "output for line 1" in str(info.value) and "input on line 2" in str(info.value)


def test_an_output_folder_that_is_a_symlink_to_the_input_folder_is_seen(tmp_path: Path) -> None:
    make(tmp_path / "in" / "a.mp4")
    (tmp_path / "out").symlink_to(tmp_path / "in")
    with pytest.raises(ConfigError, match="would overwrite the input on line 1"):
        project(tmp_path, "in/a.mp4\n", suffix="")


def test_existing_outputs_come_from_one_listing_and_a_dangling_link_is_not_one(
        tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        make(tmp_path / "in" / f"{name}.mp4")
    make(tmp_path / "out" / "a_720p.mp4")
    (tmp_path / "out" / "b_720p.mp4").symlink_to(tmp_path / "nowhere")
    plan = project(tmp_path, "in/a.mp4\nin/b.mp4\nin/c.mp4\n")
    assert plan.existing == frozenset({1})


@pytest.mark.parametrize("name,suffix", [(".orch-tui", ""), (".orch", "-tui")])
def test_an_output_named_as_the_state_folder_is_refused(tmp_path: Path, name: str,
                                                        suffix: str) -> None:
    """Its rename would fail on the state folder, and the next run would count that folder
    as the job's output and skip it for good."""
    make(tmp_path / "in" / "a.mp4")
    make(tmp_path / "in" / name)
    (tmp_path / "out" / ".orch-tui").mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        project(tmp_path, f"in/a.mp4\nin/{name}\n", suffix=suffix)
    assert info.value.key == "directories.output_suffix"
    assert "line 2" in str(info.value) and "the run's own state folder" in str(info.value)


def test_an_output_name_a_folder_holds_is_refused_not_counted_as_done(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        make(tmp_path / "in" / f"{name}.mp4")
    (tmp_path / "out" / "c_720p.mp4").mkdir(parents=True)
    (tmp_path / "out" / "b_720p.mp4").mkdir()
    (tmp_path / "out" / "a_720p.mp4").symlink_to(tmp_path / "out" / "c_720p.mp4")
    with pytest.raises(ConfigError) as info:
        project(tmp_path, "in/c.mp4\nin/a.mp4\nin/b.mp4\n")
    assert info.value.key == "directories.output_dir"
    assert f"line 1 ({tmp_path / 'in' / 'c.mp4'}): its output {tmp_path / 'out' / 'c_720p.mp4'} " \
        "is a folder" in str(info.value)


def test_a_job_keeps_only_its_input_and_output_name(tmp_path: Path) -> None:
    # 100,000 jobs: the paths and the argv are made when asked for, from the shared layout.
    make(tmp_path / "in" / "a b.mp4")
    job = project(tmp_path, "in/a b.mp4\n").jobs[0]
    assert job.output_name == "a b_720p.mp4" and job.layout is not None
    assert job.output_path == tmp_path / "out" / "a b_720p.mp4"
    assert job.argv[-1] == str(job.temp_output_path) and job.display_argv[-1] == str(
        job.output_path)
    assert job.log_path == tmp_path / "out" / ".orch-tui" / "logs" / "000" / "00001-a_b.log"

"""environment.yml parsing: what is accepted, and errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lite_env.errors import LiteEnvError
from lite_env.spec import read_spec


def write(folder: Path, text: str) -> Path:
    path = folder / "environment.yml"
    path.write_text(text)
    return path


def test_reads_conda_and_pip_dependencies(tmp_path, small_channel):
    path = write(
        tmp_path,
        "name: course\nchannels:\n  - ./channel\n  - nodefaults\ndependencies:\n"
        "  - python 3.14.*\n  - tabulate >=0.9\n  - pip:\n    - rich>=13\n",
    )
    spec = read_spec(path)
    assert spec.name == "course"
    assert spec.dependencies == ("python 3.14.*", "tabulate >=0.9")
    assert spec.pip == ("rich>=13",)
    assert [c.url for c in spec.channels] == [small_channel.as_uri() + "/"]
    assert spec.warnings == ()


def test_relative_channel_resolves_against_the_file_not_the_cwd(
    tmp_path, small_channel, monkeypatch
):
    folder = tmp_path / "course" / "week1"
    folder.mkdir(parents=True)
    path = write(folder, "channels:\n  - ../../channel\ndependencies:\n  - tabulate\n")
    monkeypatch.chdir(small_channel / "noarch")
    assert read_spec(path).channels[0].local_path == small_channel


def test_urls_are_kept(tmp_path):
    path = write(
        tmp_path,
        "channels:\n  - http://127.0.0.1:8000/channel\n  - file:///srv/channel/\n"
        "dependencies:\n  - tabulate\n",
    )
    assert [c.url for c in read_spec(path).channels] == [
        "http://127.0.0.1:8000/channel/",
        "file:///srv/channel/",
    ]


def test_conda_keys_are_accepted_and_unknown_keys_warned(tmp_path, small_channel):
    path = write(
        tmp_path,
        "channels: [./channel]\ndependencies: [tabulate]\nprefix: /opt/env\n"
        "variables: {A: b}\nplatforms: [linux-64]\n",
    )
    assert read_spec(path).warnings == (f"{path}:5: unknown key 'platforms' is ignored",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "channels: [./channel]\ndependencies:\n  - tabulate\n  - numpy: x: y\n",
            ":4: invalid YAML",
        ),
        ("channels: [./channel]\nname: x\n", ": missing `dependencies`"),
        ("channels: [./channel]\ndependencies: tabulate\n", ":2: `dependencies` must be a list"),
        (
            "channels: [./channel]\ndependencies:\n  - tabulate\n  - 'numpy >=>1'\n",
            ":4: invalid MatchSpec 'numpy >=>1'",
        ),
        (
            "channels: [./channel]\ndependencies:\n  - pip:\n    - 'rich>>=1'\n",
            ":4: invalid pip requirement 'rich>>=1'",
        ),
        ("channels: [./channel]\ndependencies:\n  - {conda: x}\n", ":3: a dependency is"),
        ("- just\n- a list\n", ": an environment file is a mapping"),
        ("dependencies: [tabulate]\n", ": no channels given"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, small_channel, text, message):
    path = write(tmp_path, text)
    with pytest.raises(LiteEnvError) as raised:
        read_spec(path)
    assert raised.value.message.startswith(f"{path}{message}")


def test_a_bare_channel_name_is_a_missing_folder_not_a_public_channel(tmp_path):
    path = write(tmp_path, "channels:\n  - conda-forge\ndependencies: [tabulate]\n")
    with pytest.raises(LiteEnvError) as raised:
        read_spec(path)
    assert raised.value.message.startswith(f"{path}:2: channel 'conda-forge' is not a folder")


def test_missing_file(tmp_path):
    with pytest.raises(LiteEnvError, match="no such environment file"):
        read_spec(tmp_path / "nope.yml")


def test_digest_ignores_the_folder_and_follows_the_content(tmp_path, small_channel):
    first = read_spec(write(tmp_path, "channels: [./channel]\ndependencies: [tabulate]\n"))
    (tmp_path / "moved").mkdir()
    (tmp_path / "moved" / "channel").symlink_to(small_channel)
    moved = read_spec(
        write(tmp_path / "moved", "channels: [./channel]\ndependencies: [tabulate]\n")
    )
    changed = read_spec(write(tmp_path, "channels: [./channel]\ndependencies: [tabulate <0.9]\n"))
    assert first.digest == moved.digest
    assert first.digest != changed.digest


def test_lite_env_section_sets_how_the_image_is_made(tmp_path, small_channel):
    path = write(
        tmp_path,
        "channels: [./channel]\ndependencies: [sympy]\nlite-env:\n  bytecode: all\n"
        "  preload: [sympy]\n  exclude: ['site-packages/sympy/plotting/**']\n"
        "  exclude-by-package:\n    sympy: ['**/benchmarks/**']\n",
    )
    options = read_spec(path).options
    assert options.bytecode == "all"
    assert options.preload == ("sympy",)
    assert options.lazy is True
    assert options.exclude == ("site-packages/sympy/plotting/**",)
    assert options.exclude_by_package == (("sympy", ("**/benchmarks/**",)),)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("lite-env:\n  bytecode: some\n", "`bytecode` is one of none, imported, all, not 'some'"),
        ("lite-env:\n  exlcude: []\n", "unknown `lite-env` option 'exlcude'"),
        ("lite-env:\n  keep: x\n", "`keep` must be a list of strings"),
        ("lite-env:\n  lazy: maybe\n", "`lazy` is true or false, not 'maybe'"),
        ("lite-env:\n  channel-in-site: 1\n", "`channel-in-site` is true or false, not 1"),
    ],
)
def test_lite_env_section_errors_name_the_line(tmp_path, small_channel, section, message):
    path = write(tmp_path, "channels: [./channel]\ndependencies: [sympy]\n" + section)
    with pytest.raises(LiteEnvError) as raised:
        read_spec(path)
    assert raised.value.message == f"{path}:3: {message}"

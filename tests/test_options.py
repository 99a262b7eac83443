"""One build's options: the environment file's `lite-env:` section with the command line on top."""

from __future__ import annotations

from pathlib import Path

import pytest

from lite_env.envspec import parse_options
from lite_env.errors import LiteEnvError
from lite_env.options import BYTECODE_MODES, MODES, BuildOptions
from lite_env.spec import read_spec


def test_the_modes_are_spelled_once():
    assert BYTECODE_MODES == ("none", "imported", "all")
    assert MODES == ("image", "lock")


def test_the_command_line_overrides_the_section_and_none_keeps_it(tmp_path):
    (tmp_path / "channel").mkdir()
    path = tmp_path / "environment.yml"
    path.write_text(
        "channels: [./channel]\ndependencies: [sympy]\n"
        "lite-env:\n  bytecode: all\n  preload: [sympy]\n  lazy: false\n  channel-in-site: true\n"
    )
    section = read_spec(path).options
    assert section.channel_in_site is True
    assert section.override(channel_in_site=None).channel_in_site is True
    assert (section.bytecode, section.preload, section.lazy) == ("all", ("sympy",), False)
    options = section.override(bytecode=None, snapshot=True, mode="lock", contents=["a.ipynb"])
    assert options.bytecode == "all"
    assert options.preload == ("sympy",) and options.lazy is False
    assert options.snapshot is True and options.mode == "lock"
    assert options.contents == (Path("a.ipynb"),)
    # a snapshot needs the loader: lock mode makes none
    assert options.shipped_snapshot is False
    assert options.override(mode="image").shipped_snapshot is True


def test_an_environment_without_a_section_gets_the_defaults(tmp_path):
    (tmp_path / "channel").mkdir()
    path = tmp_path / "environment.yml"
    path.write_text("channels: [./channel]\ndependencies: [sympy]\n")
    assert read_spec(path).options == BuildOptions()
    assert BuildOptions().bytecode == "imported"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"bytecode": "some"}, "`bytecode` is one of none, imported, all, not 'some'"),
        ({"mode": "zip"}, "`mode` is one of image, lock, not 'zip'"),
        ({"bytcode": "all"}, "unknown build option 'bytcode'"),
    ],
)
def test_a_bad_override_is_a_user_error(values, message):
    with pytest.raises(LiteEnvError) as caught:
        BuildOptions().override(**values)
    assert caught.value.message == message


def test_the_apps_a_site_keeps_are_checked():
    assert parse_options({"apps": ["lab", "repl"]}, "course.yml:9").apps == ("lab", "repl")
    with pytest.raises(LiteEnvError, match=r"course.yml:9: no JupyterLite app 'jupyterlab'"):
        parse_options({"apps": ["jupyterlab"]}, "course.yml:9")
    assert BuildOptions().override(apps=["notebooks"]).apps == ("notebooks",)

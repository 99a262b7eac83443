"""Property-based: any pixi manifest or requirements file gives a spec or one clear error that
names the file (and a line of it), never a traceback."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rattler import MatchSpec

from lite_env.errors import LiteEnvError
from lite_env.spec import read_spec

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOML_HEADERS = st.sampled_from(
    ["[workspace]", "[project]", "[dependencies]", "[pypi-dependencies]", "[feature.a]",
     "[feature.a.dependencies]", "[feature.b.pypi-dependencies]", "[environments]",
     "[environments.e]", "[target.emscripten-wasm32.dependencies]", "[tool.lite-env]",
     "[tool.pixi.workspace]", "[[workspace]]", "[feature.a.target.linux-64]"]
)  # fmt: skip
TOML_KEYS = st.sampled_from(
    ["channels", "platforms", "python", "tabulate", "features", "no-default-feature",
     "solve-group", "bytecode", "lazy", "version", "default", "e", "a", "dependencies",
     "priority", "extras", "exclude-by-package", "target.emscripten-wasm32.dependencies"]
) | st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True)  # fmt: skip
TOML_VALUES = st.sampled_from(
    [
        '"*"',
        '["./channel"]',
        '["emscripten-wasm32"]',
        '["linux-64"]',
        "1",
        "true",
        '">>1"',
        '{ version = "1.*" }',
        '{ git = "https://example.invalid/x" }',
        "[1, 2]",
        "{}",
        '["a"]',
        '[{ channel = "./channel", priority = 2 }]',
        '{ features = ["a"] }',
        '"3.14.*"',
        '"=!1"',
        '{ version = "*", extras = ["x"] }',
        '{ platform = "emscripten-wasm32" }',
        '"none"',
    ]
) | st.text(max_size=12).map(lambda text: '"' + text.replace("\\", "").replace('"', "") + '"')
TOML_LINES = st.one_of(
    TOML_HEADERS,
    st.builds(lambda key, value: f"{key} = {value}", TOML_KEYS, TOML_VALUES),
    st.text(max_size=20),
)

REQUIREMENT_LINES = st.one_of(
    st.sampled_from(
        ["six", "six==1.17.0", "six>=1; sys_platform == 'emscripten'", "-r other.txt",
         "--requirement=requirements.txt", "-e .", "git+https://example.invalid/x.git",
         "x @ https://example.invalid/x.whl", "--hash=sha256:" + "0" * 64, "--require-hashes",
         "six==1.17.0 --hash=sha256:" + "1" * 64, "attrs \\", "# comment", "--pre", "./x",
         "pywin32; sys_platform == 'win32'", "six[extra]>=1", "-c c.txt"]
    ),
    st.text(max_size=30),
)  # fmt: skip


def outcome(path, text: str):
    path.write_text(text)
    (path.parent / "channel").mkdir(exist_ok=True)
    try:
        return read_spec(path)
    except LiteEnvError as error:
        assert error.message.startswith(str(path.parent)), error.message
        line = re.match(rf"{re.escape(str(path.parent))}/[^:]+:(\d+): ", error.message)
        if line:
            assert 1 <= int(line.group(1)) <= max(len(text.splitlines()), 1) + 1
        return error


@SETTINGS
@given(lines=st.lists(TOML_LINES, max_size=14))
def test_any_pixi_manifest_is_a_spec_or_a_clear_error(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("pixi")
    result = outcome(folder / "pixi.toml", "\n".join(lines) + "\n")
    if not isinstance(result, LiteEnvError):
        assert result.lock_path == folder / "pixi.lock"
        for spec in result.dependencies:
            MatchSpec(spec)


@SETTINGS
@given(lines=st.lists(TOML_LINES, max_size=14))
def test_any_pyproject_is_a_spec_or_a_clear_error(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("pyproject")
    text = "\n".join(line.replace("[", "[tool.pixi.", 1) for line in lines) + "\n"
    outcome(folder / "pyproject.toml", text)


@SETTINGS
@given(text=st.text(max_size=200))
def test_any_text_as_a_manifest_is_a_spec_or_a_clear_error(tmp_path_factory, text):
    outcome(tmp_path_factory.mktemp("text") / "pixi.toml", text)


@SETTINGS
@given(lines=st.lists(REQUIREMENT_LINES, max_size=10))
def test_any_requirements_file_is_a_spec_or_a_clear_error(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("requirements")
    (folder / "other.txt").write_text("attrs>=24\n")
    result = outcome(folder / "requirements.txt", "\n".join(lines) + "\n")
    if not isinstance(result, LiteEnvError):
        assert all("win32" not in r and ";" not in r for r in result.pip)

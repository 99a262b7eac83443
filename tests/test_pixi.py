"""pixi workspaces as the environment: pixi.toml and pyproject.toml in pixi's documented shapes,
and pixi.lock written in pixi's layout, read back, and refused when stale as pixi would."""

from __future__ import annotations

import re

import pytest
from conftest import conda_package, index_channel
from rattler import LockFile
from ruamel.yaml import YAML

from lite_env.errors import LiteEnvError
from lite_env.lock import read_lock
from lite_env.spec import read_spec

#: pixi's multi-environment shape: a default feature, two features, two environments (one
#: without the default feature), a feature with a channel of its own, per-target tables.
WORKSPACE = """\
[workspace]
name = "course"
channels = ["../channel"]
platforms = ["emscripten-wasm32"]

[dependencies]
python = "3.14.*"
comm = "*"

[target.emscripten-wasm32.dependencies]
tabulate = ">=0.9"

[target.linux-64.dependencies]
jupyterlite-core = "*"

[feature.test.dependencies]
attrs = "*"

[feature.test.tasks]
check = "python -c 'import attrs'"

[feature.extra]
channels = [{ channel = "../extra", priority = 1 }]

[feature.extra.dependencies]
course-tools = { version = "1.0.*", build = "pyh0_0" }

[environments]
test = ["test"]
lean = { features = ["extra"], no-default-feature = true, solve-group = "lean" }
both = ["test", "extra"]

[tool.lite-env]
bytecode = "none"
preload = ["tabulate"]
"""


@pytest.fixture
def workspace(tmp_path, small_channel):
    extra = tmp_path / "extra"
    conda_package(extra, "course-tools", "1.0", depends=("tabulate <0.9",))
    index_channel(extra)
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "pixi.toml").write_text(WORKSPACE)
    return folder


def test_the_default_environment_is_the_default_feature_with_its_wasm_target(workspace):
    spec = read_spec(workspace / "pixi.toml")
    assert spec.environment == "default" and spec.name == "default"
    assert spec.dependencies == ("python 3.14.*", "comm", "tabulate >=0.9")
    assert [c.entry for c in spec.channels] == ["../channel"]
    assert spec.lock_path == workspace / "pixi.lock"
    assert spec.options.bytecode == "none" and spec.options.preload == ("tabulate",)
    assert spec.warnings == ()


def test_an_environment_combines_its_features_with_the_default_one(workspace):
    test = read_spec(workspace / "pixi.toml", "test")
    assert test.environment == "test"
    assert test.dependencies == ("attrs", "python 3.14.*", "comm", "tabulate >=0.9")
    lean = read_spec(workspace / "pixi.toml", "lean")
    assert lean.dependencies == ("course-tools 1.0.* pyh0_0",)
    assert [c.entry for c in lean.channels] == ["../extra"]  # its own, without the default
    # a feature without channels takes the workspace's; the higher priority comes first
    both = read_spec(workspace / "pixi.toml", "both")
    assert [c.entry for c in both.channels] == ["../extra", "../channel"]
    assert both.dependencies[:2] == ("attrs", "course-tools 1.0.* pyh0_0")
    assert test.digest != lean.digest != read_spec(workspace / "pixi.toml").digest


def test_a_pyproject_workspace_reads_tool_pixi_and_the_projects_dependencies(
    tmp_path, small_channel
):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "course"\nrequires-python = ">=3.11"\n'
        'dependencies = ["six==1.17.0", "pywin32; sys_platform == \'win32\'"]\n'
        '[project.optional-dependencies]\nplots = ["cycler"]\n'
        '[tool.pixi.workspace]\nchannels = ["channel"]\nplatforms = ["emscripten-wasm32",'
        ' "linux-64"]\n'
        '[tool.pixi.dependencies]\npython = "3.14.*"\n'
        '[tool.pixi.pypi-dependencies]\ntabulate = { version = ">=0.9", extras = ["widechars"] }\n'
        '[tool.pixi.environments]\nplots = ["plots"]\n'
        "[tool.lite-env]\nlazy = false\n"
    )
    spec = read_spec(tmp_path / "pyproject.toml")
    assert spec.dependencies == ("python 3.14.*",)
    assert spec.pip == ("tabulate[widechars]>=0.9", "six==1.17.0")  # pywin32: not in Pyodide
    assert spec.lock_path == tmp_path / "pixi.lock"
    assert spec.options.lazy is False
    assert read_spec(tmp_path / "pyproject.toml", "plots").pip[0] == "cycler"


def test_a_workspace_without_the_wasm_platform_is_refused_naming_the_line(lite_env, workspace):
    manifest = workspace / "pixi.toml"
    manifest.write_text(WORKSPACE.replace('["emscripten-wasm32"]', '["linux-64", "osx-arm64"]'))
    result = lite_env("lock", manifest)
    assert result.code == 1 and "Traceback" not in result.stderr
    assert f"{manifest}:4: the environment 'default' is not solved for emscripten-wasm32" in (
        result.stderr.replace("\n", "")
    )
    assert 'add "emscripten-wasm32"' in result.stderr


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (('test = ["test"]', 'test = ["tests"]'), 29, "names the feature 'tests'"),
        (('attrs = "*"', 'attrs = { git = "https://example.invalid/attrs" }'), 17, "git"),
        (('attrs = "*"', 'attrs = ">>1"'), 17, "invalid MatchSpec"),
        (('comm = "*"', 'comm = "*"\n[pypi-dependencies]\nsix = "=!1"'), 10, "invalid pip"),
        (('bytecode = "none"', 'bytecode = "some"'), 33, "`bytecode` is one of"),
        (('python = "3.14.*"', 'python = "3.14.*'), 7, "invalid TOML"),
    ],
)
def test_manifest_errors_name_the_file_and_line(workspace, change, line, message):
    manifest = workspace / "pixi.toml"
    manifest.write_text(WORKSPACE.replace(*change))
    with pytest.raises(LiteEnvError) as caught:
        read_spec(manifest, "test")
    assert caught.value.message.startswith(f"{manifest}:{line}: ")
    assert message in caught.value.message


def test_an_unknown_environment_lists_the_known_ones(workspace):
    with pytest.raises(LiteEnvError, match="no environment 'docs'") as caught:
        read_spec(workspace / "pixi.toml", "docs")
    assert caught.value.hint == "known: both, default, lean, test"
    with pytest.raises(LiteEnvError, match="is for pixi workspaces"):
        read_spec(workspace.parent / "channel" / "environment.yml", "docs")


def _layout(text: str) -> dict:
    document = YAML(typ="safe").load(text)
    return {
        "version": document["version"],
        "platforms": document["platforms"],
        "environments": {
            name: {"channels": env["channels"], "platforms": sorted(env["packages"])}
            for name, env in document["environments"].items()
        },
        "package keys": sorted({key for p in document["packages"] for key in p} - {"depends"}),
    }


def test_pixi_lock_round_trip_keeps_every_environment_in_pixis_layout(lite_env, workspace):
    manifest = workspace / "pixi.toml"
    assert lite_env("lock", manifest, "-e", "test").code == 0
    result = lite_env("lock", manifest)  # the default environment joins the test one
    assert result.code == 0, result.stderr
    text = (workspace / "pixi.lock").read_text()
    # pixi's own layout (as in its examples/wasm-jupyterlite/pixi.lock): version 7, the
    # platform with its virtual packages as pixi writes them, environments by name
    assert _layout(text) == {
        "version": 7,
        "platforms": [{"name": "emscripten-wasm32", "virtual-packages": ["__unix=0=0"]}],
        "environments": {
            "default": {"channels": [{"url": "../channel"}], "platforms": ["emscripten-wasm32"]},
            "test": {"channels": [{"url": "../channel"}], "platforms": ["emscripten-wasm32"]},
        },
        # a local channel's packages leave `channel:` out: pixi's reader wants a URL there
        "package keys": [
            "build_number", "conda", "indexed_timestamp", "license", "md5", "sha256",
            "size", "subdir", "timestamp",
        ],
    }  # fmt: skip
    # rattler's own reader (pixi's) takes the file as it is, relative paths and all
    rattler_lock = LockFile.from_path(workspace / "pixi.lock")
    assert sorted(name for name, _ in rattler_lock.environments()) == ["default", "test"]
    test = read_lock(workspace / "pixi.lock", "test")
    assert {r.name.normalized for r in test.records} == {
        "python", "python_abi", "pyodide-abi", "comm", "traitlets", "tabulate", "attrs",
    }  # fmt: skip
    assert "attrs" not in {r.name.normalized for r in read_lock(workspace / "pixi.lock").records}
    # locking one environment again keeps the other as it was
    assert lite_env("lock", manifest, "-e", "test").code == 0
    assert (workspace / "pixi.lock").read_text() == text


def test_a_changed_manifest_makes_pixi_lock_stale_as_pixi_decides(lite_env, workspace, tmp_path):
    manifest = workspace / "pixi.toml"
    assert lite_env("lock", manifest, "-e", "test").code == 0

    def install(*extra):
        return lite_env("install", "--locked", "-e", "test", "-p", tmp_path / "prefix", manifest)

    assert install().code == 0
    # a constraint the locked tabulate 0.9.0 still meets: pixi keeps the lock, so does lite-env
    manifest.write_text(WORKSPACE.replace('tabulate = ">=0.9"', 'tabulate = "0.9.*"'))
    assert install().code == 0
    for change, reason in [
        (('tabulate = ">=0.9"', 'tabulate = ">=0.10"'), "'tabulate >=0.10' is not satisfied"),
        (('attrs = "*"', 'attrs = "*"\ncourse-tools = "*"'), "'course-tools' is not satisfied"),
        (('attrs = "*"', ""), "does not use: attrs"),
        (('channels = ["../channel"]', 'channels = ["../extra", "../channel"]'), "channels"),
    ]:
        manifest.write_text(WORKSPACE.replace(*change))
        result = install()
        assert result.code == 1 and "Traceback" not in result.stderr
        assert re.search(rf"pixi.lock does not match .*pixi.toml: .*{re.escape(reason)}",
                         result.stderr.replace("\n", " ")), result.stderr  # fmt: skip


def test_a_pixi_lock_without_lite_envs_header_is_checked_by_pixis_rules(lite_env, workspace):
    """A pixi.lock that pixi wrote has no digest of lite-env's: --locked takes it when it
    satisfies the environment, and refuses it when it holds a package nothing uses."""
    manifest, lock = workspace / "pixi.toml", workspace / "pixi.lock"
    assert lite_env("lock", manifest, "-e", "test").code == 0
    lock.write_text(re.sub(r"^#.*\n", "", lock.read_text(), flags=re.M))
    prefix = workspace / "prefix"
    result = lite_env("install", "--locked", "-e", "test", "-p", prefix, manifest)
    assert result.code == 0, result.stderr
    assert (prefix / "lib" / "python3.14" / "site-packages" / "attrs").is_dir()
    result = lite_env("install", "--locked", "-p", prefix, manifest)
    assert result.code == 1 and "the lock has no `default` environment" in result.stderr
    manifest.write_text(WORKSPACE.replace('comm = "*"\n', ""))  # comm and traitlets: unused
    result = lite_env("install", "--locked", "-e", "test", "-p", prefix, manifest)
    assert result.code == 1
    assert "does not use: comm, traitlets" in result.stderr.replace("\n", " ")

"""Every exception a user can trigger ends as a LiteEnvError with a message (and a hint), and
the command leaves through its clean exit whatever happens: one test per known leak."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from lite_env.addon import LiteEnvAddon
from lite_env.bytecode import run_result
from lite_env.channel.debian import AptArchive, deb_version
from lite_env.channel.host import run_checked
from lite_env.errors import LiteEnvError
from lite_env.kernel import KERNEL_PLUGIN
from lite_env.options import BuildOptions
from lite_env.pack import Image
from lite_env.pipeline import DONE, _read_record
from lite_env.pyodide_lock import write_pyodide_lock
from lite_env.site import content_addressed, kernel_settings
from lite_env.site_check import site_image, site_modules


def _site(folder: Path, options: dict, lock: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"pyodideUrl": "./static/pyodide/pyodide.mjs", "loadPyodideOptions": options}
    config = {"jupyter-config-data": {"litePluginSettings": {KERNEL_PLUGIN: settings}}}
    (folder / "jupyter-lite.json").write_text(json.dumps(config))
    if lock is not None:
        (folder / "pyodide-lock.json").write_text(json.dumps(lock))
    return folder


def test_a_lock_mode_site_has_no_image_but_its_modules_come_from_its_lock(tmp_path):
    lock = {
        "info": {},
        "packages": {
            "sympy": {"imports": ["sympy", "isympy"]},
            "pyyaml": {"imports": ["yaml"]},
            "pyyaml-libs": {"imports": []},
            "unused": {"imports": ["unused"]},
        },
    }
    site = _site(
        tmp_path / "site",
        {"lockFileURL": "./pyodide-lock.json", "packages": ["sympy", "pyyaml", "pyyaml-libs"]},
        lock,
    )
    with pytest.raises(LiteEnvError, match="has no image .built with `--mode lock`."):
        site_image(site)
    assert site_modules(site) == ["isympy", "sympy", "yaml"]


@pytest.mark.parametrize(
    "config",
    [{}, {"jupyter-config-data": {}}, {"jupyter-config-data": {"litePluginSettings": {}}}],
)
def test_a_site_configuration_without_the_kernels_settings_is_a_user_error(tmp_path, config):
    (tmp_path / "jupyter-lite.json").write_text(json.dumps(config))
    with pytest.raises(LiteEnvError, match="the site configuration has no") as caught:
        kernel_settings(tmp_path)
    assert caught.value.hint


def test_a_folder_that_is_no_site_is_a_user_error(tmp_path):
    with pytest.raises(LiteEnvError, match="not a built site") as caught:
        site_modules(tmp_path)
    assert "lite-env build" in caught.value.hint
    (tmp_path / "jupyter-lite.json").write_text('{"jupyter-config-data": ')  # torn
    with pytest.raises(LiteEnvError, match="not a valid site configuration"):
        kernel_settings(tmp_path)


def test_a_runtime_lock_without_info_is_a_user_error(tmp_path):
    runtime_lock = tmp_path / "pyodide-lock.json"
    runtime_lock.write_text(json.dumps({"packages": {}}))
    image = Image(tmp_path, "manifest.json", ())
    with pytest.raises(LiteEnvError, match=r"has no \['info'\]"):
        write_pyodide_lock(image, runtime_lock, tmp_path / "out", depends={}, mode="image")


@pytest.mark.parametrize("record", ["", '{"manifest": "m', '{"manifest": "gone.json"}', "[]"])
def test_a_torn_or_stale_build_record_means_build_anew(tmp_path, record):
    (tmp_path / "image").mkdir()
    (tmp_path / DONE).write_text(record)
    assert _read_record(tmp_path) is None


def test_a_failing_tool_of_the_toolchain_is_a_user_error():
    with pytest.raises(LiteEnvError, match="dpkg-deb -x failed") as caught:
        run_checked(["sh", "-c", "echo no such archive >&2; exit 2"], what="dpkg-deb -x")
    assert caught.value.hint == "no such archive"
    assert run_checked(["sh", "-c", "echo fine"], what="echo") == "fine\n"


def test_an_odd_debian_file_name_is_a_user_error():
    assert deb_version(Path("libpython3.14-dev_3.14.2-1_amd64.deb")) == "3.14.2-1"
    with pytest.raises(LiteEnvError, match="not a Debian package file name"):
        deb_version(Path("libpython3.14-dev.deb"))


def test_apt_get_download_that_writes_no_deb_is_a_user_error(tmp_path, monkeypatch):
    archive = AptArchive(tmp_path / "apt", ["sid"])
    monkeypatch.setattr(archive, "update", lambda: None)
    monkeypatch.setattr(archive, "_run", lambda arguments, *, what, cwd=None: None)
    with pytest.raises(LiteEnvError, match="wrote 0 .deb files, not one"):
        archive.download("libpython3.14-dev", tmp_path)


@pytest.mark.parametrize(
    ("stdout", "stderr"),
    [("", "Traceback ...\nMemoryError"), ("compiling...\nnot json", ""), ('{"compiled": 1}', "")],
)
def test_a_bytecode_run_without_its_result_is_a_user_error(stdout, stderr):
    with pytest.raises(LiteEnvError, match="printed no result") as caught:
        run_result(stdout, stderr)
    assert caught.value.hint


def test_the_addons_post_build_step_fails_its_task_on_a_user_error(tmp_path, caplog):
    manager = SimpleNamespace(
        lite_dir=str(tmp_path), output_dir=str(tmp_path), log=logging.getLogger("lite-test")
    )
    # the addon's state after its build phase, without jupyterlite-core's manager around it
    addon = SimpleNamespace(
        manager=manager,
        log=manager.log,
        _environments=[(SimpleNamespace(name="course"), BuildOptions())],
        # an environment without the kernel's packages: add_environments refuses it
        _prepared=[
            SimpleNamespace(
                image=Image(tmp_path, "m.json", ()),
                runtime_dir=tmp_path,
                provides=("python",),
                depends={},
                snapshot=None,
                lock=SimpleNamespace(records=()),
            )
        ],
    )
    addon._failed = lambda error: LiteEnvAddon._failed(addon, error)
    with caplog.at_level(logging.ERROR, logger="lite-test"):
        assert LiteEnvAddon.add_environment(addon) is False
    assert "lacks packages the Pyodide kernel needs" in caplog.text


def test_a_bug_still_leaves_through_the_clean_exit(tmp_path):
    code = (
        "import lite_env.cli as cli\n"
        "def broken(channel_dir):\n"
        "    raise RuntimeError('a bug')\n"
        "cli.index_channel = broken\n"
        f"cli.main(['channel', 'index', {str(tmp_path)!r}])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert "RuntimeError: a bug" in done.stderr


@pytest.mark.parametrize(("argv", "code"), [(["--version"], 0), (["no-such-command"], 2)])
def test_argparse_exits_go_through_the_clean_exit(argv, code):
    done = subprocess.run(
        [sys.executable, "-c", f"import lite_env.cli as cli; cli.main({argv!r})"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == code


@pytest.mark.parametrize(
    "url",
    ["/etc/passwd", "../../outside.json", "./static/../../x", "file:///etc/passwd", "a\\..\\b"],
)
def test_a_sites_settings_never_name_a_file_outside_it(tmp_path, url):
    """lite-env check and serve read the files a site's jupyter-lite.json names: a hostile site
    cannot make them read the checker's own files."""
    from lite_env.site_check import site_image

    config = {"jupyter-config-data": {"litePluginSettings": {KERNEL_PLUGIN: {
        "pyodideUrl": "./static/pyodide/lite-env.mjs",
        "loadPyodideOptions": {"liteEnvManifestURL": url, "lockFileURL": url},
    }}}}  # fmt: skip
    (tmp_path / "jupyter-lite.json").write_text(json.dumps(config))
    with pytest.raises(LiteEnvError, match="not a file of the site"):
        site_image(tmp_path)
    with pytest.raises(LiteEnvError, match="not a file of the site"):
        content_addressed(tmp_path)

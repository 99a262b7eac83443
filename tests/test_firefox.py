"""`lite-env check --browser firefox`: a site of two environments in headless Firefox (Debian's
firefox-esr, driven by puppeteer-core under node): each kernel gets idle offline and imports its
modules, lazy packages included."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lite_env import firefox_check
from lite_env.errors import LiteEnvError
from lite_env.kernel import KERNEL_PACKAGES
from lite_env.pack import read_image
from lite_env.pipeline import Build, build_environments
from lite_env.site_check import site_image
from lite_env.spec import read_spec

#: Two environments: lite-env's own kernels extension lists them in the launcher. sympy (with
#: mpmath) and networkx are not imported at kernel start, so their chunks are lazy.
ENVIRONMENTS = {"course": ("sympy", "networkx"), "Tables": ("tabulate",)}
LAZY = {"sympy", "mpmath", "networkx", "tabulate"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, default_channel) -> Build:
    folder = tmp_path_factory.mktemp("firefox")
    specs = []
    for name, packages in ENVIRONMENTS.items():
        path = folder / f"{name.lower()}.yml"
        path.write_text(
            f"name: {name}\nchannels:\n  - {json.dumps(str(default_channel))}\n"
            "dependencies:\n" + "".join(f"  - {d}\n" for d in (*KERNEL_PACKAGES, *packages))
        )
        specs.append(read_spec(path))
    return build_environments(
        [(spec, spec.options) for spec in specs], folder / "site", cache_dir=cache_dir
    )


@pytest.mark.slow
@pytest.mark.browser
def test_lite_env_check_in_firefox_starts_every_kernel_and_imports_lazy_packages(
    built: Build, lite_env
):
    site = built.site.folder
    lazy = {
        chunk.package
        for kernel in ("python", "tables")
        for chunk in read_image(*site_image(site, kernel)).chunks
        if chunk.lazy
    }
    assert LAZY <= lazy
    done = lite_env("check", site, "--browser", "firefox", "--json")
    assert done.code == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"]
    assert sorted(report["kernels"]) == ["python", "tables"]
    for kernel, packages in zip(("python", "tables"), ENVIRONMENTS.values(), strict=True):
        result = report["kernels"][kernel]
        assert 0 < result["time_to_idle_s"] < 120
        assert result["foreign_requests"] == []
        assert set(result["modules"].values()) == {"ok"}, result["modules"]
        assert {"IPython", "pyodide_kernel", *packages} <= set(result["modules"])
        # the kernel's worker fetched the image (its requests are recorded) from the site
        assert 0 < result["bytes_received"] < result["bytes_decoded"]
        assert result["requests"] > 50


@pytest.mark.slow
@pytest.mark.browser
def test_a_corrupt_chunk_stops_the_kernel_in_firefox_with_the_loaders_message(built, tmp_path):
    broken = shutil.copytree(built.site.folder, tmp_path / "site")
    image_folder, _ = site_image(broken)
    chunk = next(image_folder.glob("comm-*.gz"))  # the kernel imports comm as it starts
    chunk.write_bytes(chunk.read_bytes() + b"x")
    with pytest.raises(LiteEnvError) as failure:
        firefox_check.check_site_firefox(
            broken, imports=["tabulate"], kernel="Python (Tables)", timeout=120
        )
    message = failure.value.message
    assert message.startswith("the kernel Python (Tables) failed to start: lite-env: ")
    assert f"chunk {chunk.name} of package comm is corrupt" in message


def test_a_missing_puppeteer_core_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(firefox_check, "NODE_PREFIX", tmp_path / "node")
    monkeypatch.setattr(firefox_check, "_tool", lambda path, package: path)
    with pytest.raises(LiteEnvError, match="needs puppeteer-core") as failure:
        firefox_check.run_in_firefox(tmp_path, ["1"])
    assert "scripts/setup.sh" in failure.value.hint

"""`%conda install` in the kernel, from the channel a site carries (`--channel-in-site`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import conda_package, index_channel, kernel_settings, run_in_site, served
from forge import link, write_conda

from lite_env.errors import LiteEnvError
from lite_env.pipeline import Build, build
from lite_env.site_channel import ChannelSource, add_channel, channel_source
from lite_env.site_check import open_notebook, run_cell
from lite_env.spec import read_spec

pytestmark = pytest.mark.slow

#: The kernel's packages only: pyyaml (with libyaml, a shared library) and tabulate are not in it.
ENVIRONMENT = """\
name: small
channels: [./channel]
dependencies: [python 3.14.*, pyodide-kernel, ipykernel, piplite, ipython, jedi, comm, micropip,
  packaging]
lite-env:
  channel-in-site: true
"""
#: Runs cells as the kernel does (transformed, awaited) in order, under node.
RUN_CELLS = """\
import asyncio
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
async def main():
    for cell in {cells!r}:
        await shell.run_cell_async(cell, transformed_cell=shell.transform_cell(cell))
        print("--- cell done", flush=True)
asyncio.ensure_future(main())
"""
USE_YAML = "import yaml; print(yaml.safe_dump({'a': [1, 2]}), yaml.__with_libyaml__)"


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, default_channel: Path
) -> Build:
    folder = default_channel.parent
    (folder / "conda-env.yml").write_text(ENVIRONMENT)
    spec = read_spec(folder / "conda-env.yml")
    return build(spec, tmp_path_factory.mktemp("conda") / "site", cache_dir=cache_dir)


def run_cells(site: Path, *cells: str) -> list[str]:
    """The output of each cell, run in order in the site's kernel under node (which imports
    the modules beside the loader from its folder)."""
    solver = Path(kernel_settings(site)["loadPyodideOptions"]["liteEnvSolverURL"]).name
    done = run_in_site(
        site,
        RUN_CELLS.format(cells=list(cells)),
        liteEnvCondaURL="./conda.mjs",
        liteEnvSolverURL=f"./{solver}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split("--- cell done\n")[: len(cells)]


def test_the_site_carries_the_channel_the_solver_and_the_installed_set(built, default_channel):
    site = built.site.folder
    for subdir in ("noarch", "emscripten-wasm32"):
        repodata = json.loads((site / "channel" / subdir / "repodata.json").read_text())
        assert sorted(repodata["packages.conda"]) == sorted(
            p.name for p in (default_channel / subdir).glob("*.conda")
        )
    installed = json.loads((site / "static" / "lite-env" / "installed.json").read_text())
    assert {p["name"] for p in installed} == {
        r.name.normalized for r in built.prepared.lock.records
    }
    options = kernel_settings(site)["loadPyodideOptions"]
    path = site / options["liteEnvSolverURL"]
    assert path.parent == site / "static" / "pyodide" and path.stat().st_size > 4_000_000
    # the solver's outside request (a conda->pip name mapping) is gone
    solver = path.read_bytes()
    assert b"fetch(CONDA_PACKAGE_MAPPING_URL)" not in solver
    assert b'Promise.resolve(new Response("{}"))' in solver
    settings = json.loads((site / "jupyter-lite.json").read_text())
    assert "liteEnvChannelURL" in json.dumps(settings)
    # the solver panics on a repodata.json sent with Content-Encoding: no gzip copy to send
    assert path.with_name(path.name + ".gz").is_file()
    assert not list((site / "channel").rglob("*.gz"))


def test_a_site_can_point_at_a_hosted_channel_instead(default_channel, cache_dir, tmp_path):
    """A hosted channel (a URL) is not carried: the kernel solves and fetches from it, and the
    site holds only the solver (from the channel's mambajs package) and the installed set."""
    with served(default_channel, channel=True) as url:
        (tmp_path / "environment.yml").write_text(ENVIRONMENT.replace("[./channel]", f"[{url}]"))
        spec = read_spec(tmp_path / "environment.yml")
        site = build(spec, tmp_path / "site", cache_dir=cache_dir).site.folder
        assert not (site / "channel").exists()
        options = kernel_settings(site)["loadPyodideOptions"]
        assert options["liteEnvChannelURL"] == url.rstrip("/")
        assert (site / options["liteEnvSolverURL"]).stat().st_size > 4_000_000
        install, use = run_cells(site, "%conda install pyyaml", USE_YAML)
    assert install.strip() == "%conda: installed libyaml 0.2.5, pyyaml 6.0.3 (28 files)"
    assert use == "a:\n- 1\n- 2\n True\n"


@pytest.mark.parametrize(
    ("file", "changes"),
    [
        ("../../lib/python3.14/site-packages/x.py.conda", {}),
        ("/drive/x-1-0.conda", {}),
        ("x-1-0.conda", {"subdir": "../.."}),
        ("x-1-0.conda", {"build": "0\n  - pip:\n    - evilpkg"}),
        ("x-1-0.conda", {"version": "1 # pinned"}),
    ],
)
def test_a_solved_package_that_is_not_plain_is_refused_before_any_fetch(file, changes):
    """A hosted channel's repodata chooses the file names, subdirs and fields the kernel
    fetches, writes and exports: a path or a line break is refused."""
    from lite_env.in_pyodide import conda_magic

    package = {"name": "x", "version": "1", "build": "0", "subdir": "noarch"} | changes
    with pytest.raises(conda_magic.CondaError, match="refused"):
        conda_magic._check_solved(file, package)
    conda_magic._check_solved(
        "x-1-0.conda", {**package, **dict.fromkeys(changes, "0")} | {"subdir": "noarch"}
    )


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ("https://student:secret@example.invalid/course", "holds credentials"),
        ("https://example.invalid/t/tk-0123456789/course", "holds credentials"),
        ("http://example.invalid/course", "over https only"),
    ],
)
def test_a_hosted_channel_that_would_leak_or_be_swapped_is_refused(tmp_path, channel, message):
    (tmp_path / "environment.yml").write_text(ENVIRONMENT.replace("[./channel]", f"[{channel}]"))
    with pytest.raises(LiteEnvError, match=message):
        channel_source(read_spec(tmp_path / "environment.yml"), [], cache_dir=tmp_path)


def test_the_sites_channel_is_byte_reproducible(built, default_channel, tmp_path):
    source = ChannelSource((default_channel,), built.prepared.lock.records)
    first, second = tmp_path / "a", tmp_path / "b"
    add_channel(first, source)
    add_channel(second, source)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


def test_conda_install_adds_a_package_with_a_shared_library_usable_in_the_next_cell(built):
    install, use, unknown, listing = run_cells(
        built.site.folder,
        "%conda install pyyaml",
        USE_YAML,
        "%conda install nosuchpkg",
        "%conda list",
    )
    assert install.strip() == "%conda: installed libyaml 0.2.5, pyyaml 6.0.3 (28 files)"
    assert use == "a:\n- 1\n- 2\n True\n"  # the C extension, linked to libyaml, loaded
    assert unknown.startswith("%conda: Cannot solve the request because of: No candidates")
    assert "Traceback" not in unknown
    assert "pyyaml                       6.0.3" in listing and "this session" in listing


def test_conda_env_export_writes_an_environment_file_a_teacher_can_use(built, tmp_path):
    installed, requested, wrote, written = run_cells(
        built.site.folder,
        "%conda install tabulate=0.10 pyyaml",
        "%conda env export --from-history",
        "%conda env export -f /home/pyodide/environment.yml",
        "print(open('/home/pyodide/environment.yml').read(), end='')",
    )
    assert "%conda: installed" in installed
    # the session's requests (as MatchSpecs), the lines for the course's environment.yml
    assert requested.endswith("dependencies:\n  - tabulate 0.10.*\n  - pyyaml\n"), requested
    assert wrote.strip() == "%conda: wrote /home/pyodide/environment.yml"
    # the whole environment pinned as conda env export does, the additions marked
    assert "  - pyyaml=6.0.3=" in written and "# added in this session" in written
    path = tmp_path / "environment.yml"
    path.write_text(written)
    spec = read_spec(path)  # lite-env reads it back
    pinned = {d.split("=")[0]: d for d in spec.dependencies}
    ipykernel = next(r for r in built.prepared.lock.records if r.name.normalized == "ipykernel")
    assert pinned["ipykernel"] == f"ipykernel={ipykernel.version}={ipykernel.build}"
    assert {"pyyaml", "libyaml", "tabulate"} <= pinned.keys()
    assert len(pinned) == len(built.prepared.lock.records) + 3
    assert [c.entry for c in spec.channels][0].startswith("http://127.0.0.1:")


@pytest.mark.browser
def test_in_the_browser_conda_install_adds_a_package_used_in_the_next_cell(built):
    """The page's own kernel (headless Chromium, the site served offline): an install with a
    dependency and a shared library, its use in the next cell, an unknown package."""
    with open_notebook(built.site.folder) as notebook:
        install = run_cell(notebook.page, "%conda install pyyaml", timeout=120)
        use = run_cell(notebook.page, USE_YAML)
        unknown = run_cell(notebook.page, "%conda install nosuchpkg", timeout=120)
        assert not notebook.foreign_requests()
    assert install.strip() == "%conda: installed libyaml 0.2.5, pyyaml 6.0.3 (28 files)"
    assert use.split() == ["a:", "-", "1", "-", "2", "True"]
    assert "Cannot solve the request" in unknown and "Traceback" not in unknown


def test_a_package_whose_bytes_differ_from_its_record_is_refused_and_nothing_written(
    built, tmp_path
):
    site = shutil.copytree(built.site.folder, tmp_path / "site")
    package = next((site / "channel" / "noarch").glob("tabulate-*.conda"))
    data = bytearray(package.read_bytes())
    data[-100] ^= 1
    package.write_bytes(bytes(data))
    install, check = run_cells(
        site,
        "%conda install tabulate",
        "import os, sysconfig; print(sorted(n for n in os.listdir(sysconfig.get_path('purelib'))"
        " if 'tabulate' in n))",
    )
    assert f"{package.name}: its bytes do not match the channel's record" in install
    assert "nothing was installed" in install
    assert check == "[]\n"


def add_to_site_channel(site: Path, make) -> str:
    """Make packages with `make(channel)` in a channel of their own and add them, with their
    records (their true sha256), to the site's channel; return the first one's name."""
    extra = index_channel(site.parent / "extra")
    make(extra)
    index_channel(extra)
    for subdir in ("noarch", "emscripten-wasm32"):
        records = json.loads((extra / subdir / "repodata.json").read_text())["packages.conda"]
        path = site / "channel" / subdir / "repodata.json"
        repodata = json.loads(path.read_text())
        repodata["packages.conda"] |= records
        path.write_text(json.dumps(repodata))
        for name in records:
            shutil.copyfile(extra / subdir / name, site / "channel" / subdir / name)
    return next(iter(records.values()))["name"] if records else ""


def test_a_hostile_archive_with_a_matching_sha256_is_refused_by_the_builds_check(built, tmp_path):
    site = shutil.copytree(built.site.folder, tmp_path / "site")
    add_to_site_channel(
        site, lambda channel: write_conda(channel / "noarch", "evil", [link("share/x", "../..")])
    )
    install, check = run_cells(
        site, "%conda install evil", "import os; print(os.path.lexists('/share/x'))"
    )
    assert install.strip() == (
        "%conda: evil-1.0-0.conda refused: share/x: a symlink pointing outside the prefix (../..);"
        " nothing was installed"
    )
    assert check == "False\n"


def test_a_package_built_for_another_pyodide_abi_is_refused_naming_it(built, tmp_path):
    site = shutil.copytree(built.site.folder, tmp_path / "site")

    def make(channel: Path) -> None:
        conda_package(channel, "oldabi", "1.0", subdir="emscripten-wasm32",
                      depends=("pyodide-abi 2025.0.*",))  # fmt: skip
        conda_package(channel, "pyodide-abi", "2025.0", subdir="emscripten-wasm32", build="0")

    add_to_site_channel(site, make)
    (install,) = run_cells(site, "%conda install oldabi")
    assert "pyodide-abi 2025.0" in install and "2026.0" in install, install
    assert "Traceback" not in install


@pytest.mark.browser
def test_conda_install_in_the_browser(built):
    from lite_env.site_check import check_site

    result = check_site(
        built.site.folder,
        imports=[],
        cells=["%conda install pyyaml", USE_YAML, "%conda install nosuchpkg"],
        timeout=180,
    )
    install, use, unknown = result.outputs
    assert "%conda: installed libyaml 0.2.5, pyyaml 6.0.3" in install
    assert use == "a:\n- 1\n- 2\n True\n"
    assert "No candidates were found for nosuchpkg" in unknown
    assert result.foreign_requests == ()

"""The default environment's site in headless Chromium: the kernel starts offline, all imports."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import struct
import time
from collections import Counter
from pathlib import Path

import pytest

from lite_env import early_start
from lite_env.errors import LiteEnvError
from lite_env.kernel import KERNEL_PLUGIN
from lite_env.pack import LAZY_STDLIB
from lite_env.pages import has_block
from lite_env.pipeline import build
from lite_env.serve import StaticHandler, make_server
from lite_env.site import (
    IMAGE_DIR,
    LOADER_NAME,
    PYODIDE_DIR,
    RUNTIME_FILES,
    kernel_settings,
)
from lite_env.site_check import (
    CheckResult,
    check_site,
    import_code,
    open_notebook,
    parse_imports,
    run_cell,
    site_image,
    top_level_modules,
)
from lite_env.spec import read_spec

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).parents[1]
#: Set to a path (relative to the repository) to save a screenshot there, e.g. docs/screenshot.png.
SCREENSHOT_VAR = "LITE_ENV_SCREENSHOT"
COURSE_CELL = """\
import sympy, tabulate, networkx as nx, yaml, markupsafe, markupsafe._speedups
x = sympy.Symbol("x")
roads = nx.Graph([("A", "B"), ("B", "C"), ("C", "E"), ("A", "D"), ("D", "E")])
print(sympy.factor(x**2 - 1))
print(tabulate.tabulate([["Ada", 36], ["Alan", 41]], headers=["name", "age"], tablefmt="github"))
print(nx.shortest_path(roads, "A", "E"))
print(yaml.load("course: [wasm, conda]", Loader=yaml.CLoader), yaml.__with_libyaml__)
print(markupsafe.escape("<b>") + markupsafe._speedups.__file__.rsplit(".", 2)[-2])
"""
COURSE_OUTPUT = """\
(x - 1)*(x + 1)
| name   |   age |
|--------|-------|
| Ada    |    36 |
| Alan   |    41 |
['A', 'D', 'E']
{'course': ['wasm', 'conda']} True
&lt;b&gt;cpython-314-wasm32-emscripten
"""
#: A first data-science cell: a pandas groupby shown as a table, and a matplotlib figure inline.
SCIENCE_CELL = """\
import pandas as pd, matplotlib.pyplot as plt
scores = pd.DataFrame({"group": list("abacb"), "score": [1.0, 2.0, 3.0, 5.5, 4.0]})
means = scores.groupby("group")["score"].mean()
display(means.to_frame())
means.plot.bar(figsize=(3, 2), color="tab:orange")
plt.show()
"""
#: How many colours an image shows, as the browser decoded it.
IMAGE_COLOURS = """(image) => {
    const canvas = document.createElement("canvas");
    [canvas.width, canvas.height] = [image.naturalWidth, image.naturalHeight];
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    const colours = new Set();
    for (let i = 0; i < pixels.length; i += 4) colours.add(pixels.slice(i, i + 4).join());
    return colours.size;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, default_environment) -> Path:
    """The site of the repository's environment.yml, on the channel built from recipes/."""
    folder = tmp_path_factory.mktemp("browser")
    return build(read_spec(default_environment), folder / "site", cache_dir=cache_dir).site.folder


@pytest.fixture(scope="module")
def modules(site: Path) -> list[str]:
    return top_level_modules(*site_image(site))


@pytest.fixture(scope="module")
def checked(site: Path, modules: list[str]) -> CheckResult:
    """One browser session: every module of the image imported, then the course cell."""
    screenshot = os.environ.get(SCREENSHOT_VAR)
    result = check_site(
        site,
        imports=modules,
        cells=[COURSE_CELL],
        screenshot=ROOT / screenshot if screenshot else None,
    )
    print(
        f"kernel idle after {result.time_to_idle_s:.2f} s; {result.responses} responses, "
        f"{result.bytes_received / 1e6:.1f} MB ({result.bytes_decoded / 1e6:.1f} MB decoded);"
        f" console errors: {list(result.console_errors)}"
    )
    return result


def test_the_image_has_the_environments_modules(modules):
    for name in (
        *("IPython", "jedi", "pyodide_kernel", "piplite", "sympy", "networkx", "tabulate"),
        *("yaml", "markupsafe", "ipywidgets"),
    ):
        assert name in modules
    assert not [m for m in modules if m.startswith("_") or m in ("tests", "test")]


def test_the_kernel_becomes_idle(checked):
    assert 0 < checked.time_to_idle_s < 120


def test_every_module_of_the_image_imports(checked):
    assert {m.name: m.error for m in checked.failed} == {}
    assert len(checked.modules) > 20
    # matplotlib_inline is IPython's and imports matplotlib: the environment has it
    assert {m.name: m.needs for m in checked.modules if m.needs} == {}
    assert {"numpy", "pandas", "matplotlib", "matplotlib_inline"} <= {
        m.name for m in checked.modules
    }


def test_no_request_leaves_the_site(checked, site):
    image_folder, manifest = site_image(site)
    # the kernel's worker fetches the image: seeing it proves worker requests are recorded
    assert any(url.endswith(f"/static/lite-env/{manifest}") for url in checked.requests)
    assert checked.foreign_requests == ()


def test_the_check_reports_the_bytes_received_compressed_and_decoded(checked):
    # the site is precompressed: the runtime, JupyterLab's bundles and the manifest go as gzip
    # (about 13 MB less for the default site; the image's chunks are gzip already)
    summary = checked.to_json()
    assert 0 < summary["bytes_received"] < summary["bytes_decoded"] - 8_000_000
    assert "decoded)" in str(checked.lines()[0])


def test_a_course_cell_runs(checked):
    assert checked.outputs == (COURSE_OUTPUT,)


def test_the_screenshot_is_saved_when_asked(checked):
    if not os.environ.get(SCREENSHOT_VAR):
        pytest.skip(f"set {SCREENSHOT_VAR}=docs/screenshot.png to save one")
    if checked.screenshot is None:
        pytest.skip("the screenshot could not be saved")
    assert checked.screenshot.read_bytes().startswith(b"\x89PNG")


def test_a_corrupt_chunk_stops_the_kernel_with_the_loaders_message(site, tmp_path):
    broken = shutil.copytree(site, tmp_path / "site")
    image_folder, _ = site_image(broken)
    chunk = next(image_folder.glob("comm-*.gz"))  # the kernel imports comm as it starts
    chunk.write_bytes(chunk.read_bytes() + b"x")
    with pytest.raises(LiteEnvError) as failure:
        check_site(broken, imports=["tabulate"], timeout=120)
    assert failure.value.message.startswith(
        "the kernel Python (Pyodide) failed to start: lite-env: "
    )
    assert f"chunk {chunk.name} of package comm is corrupt" in failure.value.message
    assert "uncaught: lite-env: chunk" in failure.value.hint


def test_a_corrupt_lazy_chunk_fails_its_import_with_the_loaders_message(site, tmp_path):
    broken = shutil.copytree(site, tmp_path / "site")
    image_folder, _ = site_image(broken)
    chunk = next(image_folder.glob("tabulate-*.gz"))
    chunk.write_bytes(chunk.read_bytes() + b"x")
    result = check_site(broken, imports=["tabulate", "attrs"], timeout=120)
    errors = {m.name: m.error for m in result.failed}
    assert list(errors) == ["tabulate"]
    assert f"lite-env: chunk {chunk.name} of package tabulate is corrupt" in errors["tabulate"]


def test_packages_the_start_does_not_import_are_fetched_after_it(site):
    image_folder, manifest = site_image(site)
    chunks = json.loads((image_folder / manifest).read_text())["chunks"]
    lazy = {c["package"]: c for c in chunks if c["lazy"]}
    eager = {c["file"] for c in chunks if not c["lazy"]}
    assert {"sympy", "networkx", "tabulate", "mpmath"} <= set(lazy)
    assert not {"ipython", "jedi", "comm", "pyodide-kernel"} & set(lazy)
    with open_notebook(site) as notebook:
        # the start fetches every eager chunk; lazy ones are only asked for after the last
        files = [url.rsplit("/", 1)[-1] for url in notebook.requests]
        last_eager = max(files.index(file) for file in eager)
        assert not {c["file"] for c in lazy.values()} & set(files[:last_eager])
        # metadata and imports find them (from the background fetch or a synchronous one)
        cell = "import importlib.metadata as m\nprint(m.version('tabulate'))\nimport sympy"
        assert run_cell(notebook.page, cell).strip() == lazy["tabulate"]["version"]


def test_without_prefetching_a_lazy_package_is_fetched_by_its_import(site, tmp_path):
    """Also a kernel whose settings are not those its page's early worker started with (a
    site's settings edited after the build): the worker is stopped and the kernel gets one of
    its own, with its settings (no prefetch), not the Python booted with the others."""
    quiet = shutil.copytree(site, tmp_path / "site")
    config_path = quiet / "jupyter-lite.json"
    config = json.loads(config_path.read_text())
    plugins = config["jupyter-config-data"]["litePluginSettings"]
    plugins[KERNEL_PLUGIN]["loadPyodideOptions"]["liteEnvPrefetch"] = False
    config_path.write_text(json.dumps(config))
    image_folder, manifest = site_image(quiet)
    chunks = json.loads((image_folder / manifest).read_text())["chunks"]
    lazy = {c["package"]: c["file"] for c in chunks if c["lazy"]}
    version = {c["package"]: c["version"] for c in chunks}
    with open_notebook(quiet) as notebook:
        early = "[self.liteEnvEarlyKernel.adopted, self.liteEnvEarlyKernel.worker]"
        assert notebook.page.evaluate(early) == [None, None]

        def fetched(wanted: set[str] = frozenset()) -> set[str]:
            """The files requested so far, once `wanted` are among them (Playwright reports a
            worker's requests asynchronously) or after 5 s."""
            for _ in range(50):
                files = {url.rsplit("/", 1)[-1] for url in notebook.requests}
                if wanted <= files:
                    break
                notebook.page.wait_for_timeout(100)
            return files

        assert not set(lazy.values()) & fetched()
        # the standard library the start does not import is fetched by its first import too
        cell = "import statistics\nprint(statistics.median([3, 1, 2]))"
        assert run_cell(notebook.page, cell).strip() == "2"
        assert lazy[LAZY_STDLIB] in fetched({lazy[LAZY_STDLIB]})
        cell = "import tabulate\nprint(tabulate.tabulate([[1, 2]], tablefmt='plain'))"
        assert run_cell(notebook.page, cell).strip() == "1  2"
        files = fetched({lazy["tabulate"]})
        assert lazy["tabulate"] in files and lazy["sympy"] not in files
        # networkx scans every distribution's entry points as it imports: the metadata written
        # at start answers, and no other package is fetched
        cell = "import networkx as nx\nprint(nx.shortest_path_length(nx.path_graph(4), 0, 3))"
        assert run_cell(notebook.page, cell).strip() == "3"
        files = fetched({lazy["networkx"]})
        assert lazy["networkx"] in files and lazy["sympy"] not in files
        cell = "import importlib.metadata as m\nprint(m.version('sympy'))"
        assert run_cell(notebook.page, cell).strip() == version["sympy"]
        assert lazy["sympy"] not in fetched()


def test_a_data_science_cell_shows_a_table_and_an_inline_figure(site):
    with open_notebook(site) as notebook:
        page = notebook.page
        run_cell(page, SCIENCE_CELL, timeout=180)
        output = page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-OutputArea-output")
        rows = output.locator("table tbody tr").all_inner_texts()
        assert [row.split() for row in rows] == [["a", "2.0"], ["b", "3.0"], ["c", "5.5"]]
        image = output.locator("img")
        assert image.count() == 1
        source = image.get_attribute("src") or ""
        assert source.startswith("data:image/png;base64,")
        png = base64.b64decode(source.split(",", 1)[1])
        width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and width > 100 and height > 50
        # decoded by the browser: axes, labels and orange bars on white, antialiased
        assert image.evaluate(IMAGE_COLOURS) > 20
        assert not notebook.uncaught


class _LoggedHandler(StaticHandler):
    """Logs every request's path; answers chunks after a delay, so that the background
    prefetch is still fetching lazy chunks while a cell imports them; forbids caching, so that
    every request the page and its workers make reaches the server (the browser's cache would
    hide a second fetch of a file)."""

    served: list[str]
    delay_s = 0.3

    def do_GET(self) -> None:
        self.served.append(self.path)
        if self.path.endswith(".gz"):
            time.sleep(self.delay_s)
        super().do_GET()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


def test_a_cold_load_fetches_each_runtime_file_and_chunk_once(site):
    image_folder, manifest = site_image(site)
    chunks = json.loads((image_folder / manifest).read_text())["chunks"]
    packages = [chunk for chunk in chunks if chunk["package"] != LAZY_STDLIB]
    lazy_modules = sorted({module for chunk in packages for module in chunk["lazy"]})
    served: list[str] = []
    handler = type("Handler", (_LoggedHandler,), {"served": served})
    server = make_server(site, port=0, handler=handler)
    with open_notebook(site, server=server) as notebook:
        # right after idle, while the prefetch fetches one lazy chunk after another (each
        # answered 0.3 s late), the cell imports every lazy package: it waits for the chunk in
        # flight and starts the fetch of those the prefetch has not reached
        cell = "from pyodide.ffi import can_run_sync\nprint(can_run_sync())\n"
        output = run_cell(notebook.page, cell + import_code(lazy_modules), timeout=120)
        assert output.startswith("True\n")  # the import waits for promises (JSPI)
        assert {m.name: m.error for m in parse_imports(output, lazy_modules) if not m.ok} == {}
        options = kernel_settings(site)["loadPyodideOptions"]
        runtime = [name for name in RUNTIME_FILES if name != "pyodide-lock.json"] + [LOADER_NAME]
        files = [f"/{(PYODIDE_DIR / name).as_posix()}" for name in runtime]
        files += [options["lockFileURL"].removeprefix("."), f"/{(IMAGE_DIR / manifest).as_posix()}"]
        files += [f"/{(IMAGE_DIR / chunk['file']).as_posix()}" for chunk in chunks]
        for _ in range(100):  # the prefetch goes on after the cell: wait for its end
            if set(files) <= set(served):
                break
            notebook.page.wait_for_timeout(100)
        notebook.page.wait_for_timeout(1000)  # and for a second fetch, if one were coming
    counts = Counter(served)
    assert {file: counts[file] for file in files} == dict.fromkeys(files, 1)


def test_the_page_starts_the_kernels_worker_and_the_kernel_takes_it(site):
    """The pages that start a kernel create the default kernel's worker as they load; the
    kernel takes that worker (no second one) and the Python booted in it, with its output
    and working directory wired as a kernel's own start makes them."""
    assert has_block((site / "lab" / "index.html").read_text(), early_start.BLOCK)
    assert not has_block((site / "tree" / "index.html").read_text(), early_start.BLOCK)
    with open_notebook(site) as notebook:
        early = notebook.page.evaluate(
            "({adopted: self.liteEnvEarlyKernel.adopted, left: !!self.liteEnvEarlyKernel.worker})"
        )
        workers = [worker.url.rsplit("/", 1)[-1] for worker in notebook.page.workers]
        cell = (
            "import os, sys\nprint(os.getcwd(), 'Untitled.ipynb' in os.listdir())\n"
            "print('to stderr', file=sys.stderr)"
        )
        output = run_cell(notebook.page, cell)
    assert early == {"adopted": True, "left": False}
    assert len(workers) == 1 and workers[0].startswith("kernel-"), workers
    # the notebook's folder of the page's drive, listed through the drive's service worker
    assert output.split() == ["/drive", "True", "to", "stderr"]


#: In the page: fetch a file, return its Content-Encoding and the sha256 of the decoded body.
FETCH_DIGEST = """async (url) => {
    const response = await fetch(url, {cache: "no-store"});
    const digest = await crypto.subtle.digest("SHA-256", await response.arrayBuffer());
    const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"));
    return [response.headers.get("content-encoding"), hex.join("")];
}"""


def test_chromium_decodes_the_precompressed_files_to_the_originals(site):
    with open_notebook(site) as notebook:
        for name in ("pyodide.asm.wasm", "pyodide.asm.mjs", LOADER_NAME):
            path = site / PYODIDE_DIR / name
            assert path.with_name(name + ".gz").is_file()
            url = f"/{(PYODIDE_DIR / name).as_posix()}"
            encoding, digest = notebook.page.evaluate(FETCH_DIGEST, url)
            assert (encoding, digest) == ("gzip", hashlib.sha256(path.read_bytes()).hexdigest())

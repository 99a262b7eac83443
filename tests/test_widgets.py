"""Widgets and rich output: the environment's JupyterLab extensions reach the site, and work.

ipywidgets rides on the Jupyter comm protocol: a slider moved in the page sends its value to
the kernel, whose `observe` callback sets a label that the page then shows. Plotly renders
through its mime renderer extension (jupyterlab-plotly, shipped in plotly's wheel), offline.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lite_env.extensions import LABEXTENSIONS, kernel_extension
from lite_env.kernel import KERNEL_BOOTSTRAP, KERNEL_EXTENSION, KERNELS_EXTENSION
from lite_env.pack import read_image
from lite_env.pipeline import Build, build
from lite_env.site_check import Notebook, open_notebook, run_cell, site_image
from lite_env.spec import read_spec

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).parents[1]
SCREENSHOT = ROOT / "docs" / "widgets.png"
WIDGETS_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
PLOTLY_EXTENSION = "jupyterlab-plotly"
#: The kernel's packages, then the widget stack.
#: nbformat: plotly refuses every notebook renderer without it ("Mime type rendering requires
#: nbformat>=4.2.0 but it is not installed"), as in any Jupyter kernel environment.
DEPENDENCIES = ("python 3.14.*", *KERNEL_BOOTSTRAP, "packaging", "ipywidgets", "plotly", "nbformat")
#: The label is set by a callback in the kernel: it changes only if the comm round trip works.
SLIDER_CELL = """\
import ipywidgets as widgets
slider = widgets.IntSlider(value=3, min=0, max=10, description="n")
label = widgets.Label("value: 3")
def show(change):
    label.value = f"value: {change['new']}"
slider.observe(show, names="value")
widgets.VBox([slider, label])
"""
PLOTLY_CELL = """\
import plotly.graph_objects as go
go.Figure(go.Scatter(x=[1, 2, 3, 4], y=[10, 11, 12, 13], mode="lines+markers"))
"""
SHIM = "widgetsnbextension-4.0.999-py3-none-any.whl"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, default_channel) -> Build:
    folder = tmp_path_factory.mktemp("widgets")
    environment = folder / "environment.yml"
    environment.write_text(
        "name: widgets\nchannels:\n"
        f"  - {json.dumps(str(default_channel))}\n"
        "dependencies:\n" + "".join(f"  - {d}\n" for d in DEPENDENCIES)
    )
    started = time.perf_counter()
    result = build(read_spec(environment), folder / "site", cache_dir=cache_dir)
    print(f"widgets site built in {time.perf_counter() - started:.1f} s")
    return result


@pytest.fixture(scope="module")
def notebook(built: Build) -> Iterator[Notebook]:
    """One browser for the module: a notebook with an idle kernel."""
    with open_notebook(built.site.folder) as opened:
        print(f"kernel idle after {opened.time_to_idle_s:.1f} s")
        yield opened


def _federated(site: Path) -> list[str]:
    config = json.loads((site / "jupyter-lite.json").read_text())
    return [e["name"] for e in config["jupyter-config-data"]["federated_extensions"]]


def test_the_site_has_the_environment_extensions_and_the_kernels_only(built: Build):
    site = built.site.folder
    names = {e.name: e for e in built.extensions}
    # the kernel's, lite-env's kernels extension (which hands the kernel the page's early
    # worker), the environment's
    expected = [KERNEL_EXTENSION, KERNELS_EXTENSION, PLOTLY_EXTENSION, WIDGETS_EXTENSION]
    assert sorted(names) == sorted(expected)
    assert sorted(_federated(site)) == sorted(names)
    assert names[WIDGETS_EXTENSION].package.startswith("jupyterlab-widgets ")
    assert names[PLOTLY_EXTENSION].package.startswith("plotly ")
    assert not names[KERNEL_EXTENSION].from_environment
    for extension in built.extensions:
        copied = json.loads((site / "extensions" / extension.name / "package.json").read_text())
        assert (copied["name"], copied["version"]) == (extension.name, extension.version)
    # nothing else on disk either: the build venv's own extensions (jupyterlab_pygments) stay out
    on_disk = {p.parent.relative_to(site / "extensions").as_posix()
               for p in (site / "extensions").glob("**/package.json")
               if "schemas" not in p.relative_to(site / "extensions").parts}  # fmt: skip
    assert on_disk == set(names)


def test_the_image_leaves_the_extensions_to_the_site(built: Build):
    image = read_image(*site_image(built.site.folder))
    paths = [path for chunk in image.chunks for path, *_ in chunk.files]
    assert not [p for p in paths if p.startswith(f"{LABEXTENSIONS.as_posix()}/")]
    assert any(p.endswith("/ipywidgets/__init__.py") for p in paths)


def test_the_environment_takes_the_kernels_widgetsnbextension_shim(built: Build):
    """ipywidgets 8 wants widgetsnbextension ~=4.0.14: the kernel's empty 4.0.999 shim, which
    its piplite index also offers, wins over PyPI's classic-notebook extension."""
    records = {r.name.normalized: r for r in built.prepared.lock.records}
    assert str(records["widgetsnbextension"].version) == "4.0.999"
    # the environment's package is the very wheel the kernel ships: the same (one) module
    chunk = next(c for c in built.prepared.image.chunks if c.package == "widgetsnbextension")
    in_image = {
        p.split("site-packages/", 1)[1]
        for p, *_ in chunk.files
        if "site-packages/" in p and ".dist-info/" not in p and "__pycache__" not in p
    }
    shim = kernel_extension().folder / "static" / "pypi" / SHIM
    with zipfile.ZipFile(shim) as wheel:
        shipped = {n for n in wheel.namelist() if ".dist-info/" not in n and not n.endswith("/")}
    assert in_image == shipped == {"widgetsnbextension/__init__.py"}


def test_a_slider_moved_in_the_page_updates_a_label_through_the_kernel(notebook: Notebook):
    from playwright.sync_api import expect

    page = notebook.page
    output = run_cell(page, SLIDER_CELL, timeout=120)
    assert "value: 3" in output, output
    cells = page.locator(".jp-Notebook .jp-Cell")
    cell = cells.nth(cells.count() - 2)  # the one just run, above the new empty one
    handle = cell.locator(".widget-slider .noUi-handle")
    label = cell.locator(".widget-label").filter(has_text="value:")
    expect(handle).to_be_visible(timeout=30_000)
    expect(label).to_have_text("value: 3")
    handle.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    expect(cell.locator(".widget-readout")).to_have_text("7", timeout=30_000)
    expect(label).to_have_text("value: 7", timeout=30_000)  # set by the kernel's callback
    assert run_cell(page, "print(slider.value, label.value)", timeout=60).strip() == "7 value: 7"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    cell.screenshot(path=str(SCREENSHOT))
    assert notebook.foreign_requests() == []


def test_a_plotly_figure_renders_offline(notebook: Notebook):
    from playwright.sync_api import expect

    page = notebook.page
    run_cell(page, PLOTLY_CELL, timeout=120)
    cells = page.locator(".jp-Notebook .jp-Cell")
    cell = cells.nth(cells.count() - 2)  # the one just run, above the new empty one
    plot = cell.locator(".jp-OutputArea-output.jp-RenderedPlotly")  # jupyterlab-plotly's renderer
    expect(plot.locator("svg.main-svg").first).to_be_visible(timeout=60_000)
    assert plot.locator(".scatterlayer .trace").count() == 1
    assert notebook.foreign_requests() == []

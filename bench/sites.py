"""Build the sites the kernel-start benchmark compares: stock JupyterLite, lite-env, the floor.

Every site goes to `bench/work/sites/<variant>/`. File times are set to one fixed date
(lite-env's SOURCE_DATE_EPOCH), so that the server's Last-Modified is the same everywhere and
a browser's heuristic freshness (no Cache-Control is sent) keeps every file fresh on a warm
load: a warm load then comes from the HTTP cache, without revalidation, for every variant.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name
from rattler import MatchSpec

from lite_env import early_start
from lite_env.channel.pins import read_pins
from lite_env.channel.pypi import WheelStore
from lite_env.channel.wheel import conda_name
from lite_env.kernel import KERNEL_BOOTSTRAP, KERNEL_PLUGIN
from lite_env.pages import remove_block
from lite_env.pipeline import build
from lite_env.precompress import precompress
from lite_env.site import LOADER_NAME, RUNTIME_FILES, SOURCE_DATE_EPOCH
from lite_env.site_channel import CHANNEL_DIR
from lite_env.spec import read_spec

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / "work"
SITES = WORK / "sites"
#: What the stock kernel installs itself at start (jupyterlite-pyodide-kernel 0.8.6's worker).
STOCK_BOOTSTRAP = ("ipykernel", "comm", "pyodide-kernel", "jedi", "ipython")
#: Shipped by the kernel's labextension (static/pypi/): the stock site has them already.
KERNEL_WHEELS = ("piplite", "pyodide-kernel", "ipykernel")
#: Packages that are the runtime, not wheels.
RUNTIME_PACKAGES = ("python", "python_abi", "pyodide-abi")
#: The kernel's own packages: lite-env's kernel-only environment (the stock package set).
KERNEL_ENVIRONMENT = ("python 3.14.*", *KERNEL_BOOTSTRAP)
FLOOR_MODULE = "floor.mjs"
#: A variant's name with this suffix: the same site served with gzip copies.
COMPRESSED = "+gz"
#: lite-env variants: name → (environment, build options)
LITE_ENV_VARIANTS = {
    "lite-env": ("default", {"bytecode": "imported"}),
    "lite-env-all": ("default", {"bytecode": "all"}),
    "lite-env-none": ("default", {"bytecode": "none"}),
    "lite-env-kernel": ("kernel", {"bytecode": "imported"}),
    "lite-env-snapshot": ("default", {"bytecode": "imported", "snapshot": True}),
    "lite-env-eager": ("default", {"bytecode": "imported", "lazy": False}),
    # the kernel's worker created when the kernel is, not with the page
    "lite-env-late": ("default", {"bytecode": "imported", "early_start": False}),
    # the kernel's packages and the channel in the site: `%conda install` of what it lacks
    "lite-env-conda": ("kernel", {"bytecode": "imported", "channel_in_site": True}),
}


@dataclass
class SiteInfo:
    """A built variant: where it is and what it ships."""

    name: str
    folder: str
    build_s: float
    packages: int = 0
    notes: list[str] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)  # notable files and their sizes


def environment_file(kind: str) -> Path:
    """A bench-local copy of the environment (so the repository's lock is never written),
    with the repository's channel as an absolute path."""
    folder = WORK / "env" / kind
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "environment.yml"
    channel = REPO / "channel"
    if kind == "default":
        text = (REPO / "environment.yml").read_text()
        text = text.replace("  - ./channel\n", f"  - {channel}\n")
    else:
        deps = "".join(f"  - {d}\n" for d in KERNEL_ENVIRONMENT)
        text = f"name: bench-kernel\nchannels:\n  - {channel}\ndependencies:\n{deps}"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def build_lite_env(name: str, *, cache_dir: Path) -> SiteInfo:
    kind, options = LITE_ENV_VARIANTS[name]
    spec = read_spec(environment_file(kind))
    out = SITES / name
    started = time.perf_counter()
    # no precompressed copies: every variant is served as it is, stock's too (and the floor
    # and probed copies edit files whose copies would go stale)
    options = {"precompress": False, **options}
    result = build(spec, out, spec.options.override(**options), cache_dir=cache_dir)
    elapsed = time.perf_counter() - started
    image = result.prepared.image
    info = SiteInfo(name, str(out), elapsed, packages=len(result.prepared.lock.records))
    info.files = {
        "image_gz": image.size,
        "image_raw": image.raw_size,
        "image_files": sum(len(c.files) for c in image.chunks),
        "image_chunks": len(image.chunks),
    }
    snapshot = getattr(result.prepared, "snapshot", None)
    if snapshot is not None:
        info.files["snapshot_gz"] = getattr(snapshot, "size", 0)
        info.files["snapshot_raw"] = getattr(snapshot, "raw_size", 0)
        info.notes.append(f"snapshot of {len(getattr(snapshot, 'modules', ()))} modules")
    problems = getattr(result.prepared, "bytecode_problems", ())
    if problems:
        info.notes.append(f"bytecode problems: {list(problems)[:10]}")
    normalize_times(out)
    return info


def stock_wheels(cache_dir: Path) -> tuple[list[Path], Path]:
    """The wheels the stock kernel installs through piplite (channel versions), and micropip's.

    The closure of STOCK_BOOTSTRAP is taken from the lock of lite-env's kernel-only
    environment, so stock installs exactly the packages (and versions) lite-env ships.
    """
    from lite_env.lock import lock_environment

    spec = read_spec(environment_file("kernel"))
    lock = lock_environment(spec, cache_dir=cache_dir)
    depends = {
        r.name.normalized: {MatchSpec(d).name.normalized for d in r.depends} for r in lock.records
    }
    closure, todo = set(), [*STOCK_BOOTSTRAP, "piplite"]
    while todo:
        name = todo.pop()
        if name in closure or name not in depends:
            continue
        closure.add(name)
        todo += sorted(depends[name])
    wanted = closure - set(RUNTIME_PACKAGES) - set(KERNEL_WHEELS) - {"micropip"}
    pins = {conda_name(p.name): p for p in read_pins(REPO / "recipes").wheels}
    missing = sorted(wanted - set(pins))
    if missing:
        raise RuntimeError(f"no PyPI pin in recipes/pypi.yaml for {missing}")
    store = WheelStore(cache_dir)
    paths = store.fetch([pins[n] for n in sorted(wanted)])
    (micropip,) = store.fetch([pins["micropip"]])
    return paths, micropip


def runtime_dir(cache_dir: Path) -> Path:
    """Pyodide's core files as the `python` package ships them: from the site built with
    bytecode "none", whose python_stdlib.zip is Pyodide's own (sources only)."""
    site = SITES / "lite-env-none" / "static" / "pyodide"
    if not (site / "pyodide.mjs").exists():
        build_lite_env("lite-env-none", cache_dir=cache_dir)
    with zipfile.ZipFile(site / "python_stdlib.zip") as stdlib:
        if any(name.endswith(".pyc") for name in stdlib.namelist()):
            raise RuntimeError(f"{site}/python_stdlib.zip is not Pyodide's own: it has .pyc")
    return site


def build_stock(*, cache_dir: Path) -> SiteInfo:
    """Plain `jupyter lite build` of a lite dir with the runtime in static/pyodide/, micropip's
    wheel beside it, and the kernel's other packages in pypi/ for piplite (PyPI fallback off).
    """
    started = time.perf_counter()
    notes = []
    wheels, micropip = stock_wheels(cache_dir)
    lite_dir = WORK / "stock-lite"
    shutil.rmtree(lite_dir, ignore_errors=True)
    pyodide = lite_dir / "static" / "pyodide"
    pyodide.mkdir(parents=True)
    source = runtime_dir(cache_dir)
    for name in RUNTIME_FILES:
        shutil.copyfile(source / name, pyodide / name)
    lock = json.loads((pyodide / "pyodide-lock.json").read_text())
    entry = lock["packages"]["micropip"]
    shutil.copyfile(micropip, pyodide / entry["file_name"])
    actual = hashlib.sha256(micropip.read_bytes()).hexdigest()
    if entry["file_name"] != micropip.name:
        raise RuntimeError(f"the lock wants {entry['file_name']}, PyPI gave {micropip.name}")
    if actual != entry["sha256"]:
        notes.append(
            f"micropip: pyodide-lock.json has sha256 {entry['sha256']} for {entry['file_name']},"
            f" the PyPI wheel (pip download) has {actual}: the lock's entry is patched to the"
            " PyPI digest (Pyodide checks it through fetch integrity)"
        )
        entry["sha256"] = actual
    # micropip searches pyodide-lock.json first when no index_urls are given (piplite gives
    # none): a package listed there would be fetched from static/pyodide/ at the lock's
    # version, which an offline runtime-only folder lacks. Unlist the packages piplite serves.
    served = {canonicalize_name(w.name.split("-")[0]) for w in wheels}
    dropped = sorted(k for k in lock["packages"] if canonicalize_name(k) in served)
    for key in dropped:
        del lock["packages"][key]
    notes.append(f"unlisted from pyodide-lock.json (served by piplite instead): {dropped}")
    (pyodide / "pyodide-lock.json").write_text(json.dumps(lock, indent=2))
    (lite_dir / "pypi").mkdir()
    for wheel in wheels:
        shutil.copyfile(wheel, lite_dir / "pypi" / wheel.name)
    settings = {"disablePyPIFallback": True}
    config = {"jupyter-config-data": {"litePluginSettings": {KERNEL_PLUGIN: settings}}}
    (lite_dir / "jupyter-lite.json").write_text(json.dumps(config, indent=2))
    out = SITES / "stock"
    shutil.rmtree(out, ignore_errors=True)
    jupyter = Path(sys.executable).with_name("jupyter")
    command = [str(jupyter), "lite", "build", "--lite-dir", str(lite_dir),
               "--output-dir", str(out), "--no-sourcemaps"]  # fmt: skip
    done = subprocess.run(command, cwd=lite_dir, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("jupyter lite build failed:\n" + (done.stdout + done.stderr)[-3000:])
    kernel = json.loads((out / "jupyter-lite.json").read_text())["jupyter-config-data"][
        "litePluginSettings"
    ][KERNEL_PLUGIN]
    if kernel.get("pyodideUrl") != "./static/pyodide/pyodide.mjs":
        raise RuntimeError(f"the stock site's pyodideUrl is {kernel.get('pyodideUrl')!r}")
    notes.append(f"kernel settings: {json.dumps(kernel, sort_keys=True)}")
    normalize_times(out)
    info = SiteInfo("stock", str(out), time.perf_counter() - started, notes=notes)
    info.packages = len(wheels) + 1 + len(KERNEL_WHEELS)
    info.files = {w.name: w.stat().st_size for w in sorted(wheels)}
    info.files[micropip.name] = micropip.stat().st_size
    return info


FLOOR_SOURCE = """\
// bench: the floor. Pyodide's own loadPyodide with no environment (no image, no packages);
// reports when the runtime is ready, as epoch milliseconds, to the bench server.
import { loadPyodide as loadPyodideRuntime } from "./pyodide.mjs";

export * from "./pyodide.mjs";

export async function loadPyodide(options = {}) {
  const called = performance.timeOrigin + performance.now();
  const runtimeOptions = {};
  for (const [key, value] of Object.entries(options)) {
    if (!key.startsWith("liteEnv") && key !== "packages") runtimeOptions[key] = value;
  }
  let fsInit = null;
  const userFsInit = runtimeOptions.fsInit;
  runtimeOptions.fsInit = async (FS, info) => {
    fsInit = performance.timeOrigin + performance.now();
    if (userFsInit) await userFsInit(FS, info);
  };
  const pyodide = await loadPyodideRuntime(runtimeOptions);
  const ready = performance.timeOrigin + performance.now();
  const marks = {
    "floor-loadPyodide-called": called, "floor-fsInit": fsInit, "floor-runtime-ready": ready,
  };
  fetch("/__bench/marks", { method: "POST", body: JSON.stringify({ marks }) }).catch(() => {});
  return pyodide;
}
"""


def build_floor(*, cache_dir: Path) -> SiteInfo:
    """The lite-env site without its environment: pyodideUrl → floor.mjs (the real
    loadPyodide, no image, no packages); the kernel fails after the runtime is ready."""
    started = time.perf_counter()
    source = SITES / "lite-env"
    if not (source / "jupyter-lite.json").exists():
        build_lite_env("lite-env", cache_dir=cache_dir)
    out = SITES / "floor"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(source, out)
    shutil.rmtree(out / "static" / "lite-env", ignore_errors=True)  # no image to fetch
    (out / "static" / "pyodide" / LOADER_NAME).unlink(missing_ok=True)
    for page in out.glob("*/index.html"):  # the kernel's worker, made when the kernel is,
        page.write_text(remove_block(page.read_text(), early_start.BLOCK))  # asks alone
    (out / "static" / "pyodide" / FLOOR_MODULE).write_text(FLOOR_SOURCE)
    path = out / "jupyter-lite.json"
    config = json.loads(path.read_text())
    kernel = config["jupyter-config-data"]["litePluginSettings"][KERNEL_PLUGIN]
    kernel["pyodideUrl"] = f"./static/pyodide/{FLOOR_MODULE}"
    options = kernel.setdefault("loadPyodideOptions", {})
    options.pop("liteEnvManifestURL", None)
    options.pop("liteEnvSnapshotURL", None)
    options.pop("liteEnvSnapshotSha256", None)
    # the runtime's own lock (lite-env's lists image chunks, now gone)
    options["lockFileURL"] = "./static/pyodide/pyodide-lock.json"
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    normalize_times(out)
    return SiteInfo(
        "floor",
        str(out),
        time.perf_counter() - started,
        notes=[
            "lite-env site minus static/lite-env/ and lite-env.mjs; pyodideUrl = floor.mjs;"
            " loadPyodideOptions without liteEnv* keys and without packages; runtime lock",
        ],
    )


def normalize_times(folder: Path) -> None:
    for root, _, names in os.walk(folder):
        for name in names:
            os.utime(os.path.join(root, name), (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH))


def served_compressed(name: str, base: SiteInfo) -> SiteInfo:
    """A copy of a built variant with a gzip copy beside each file that shrinks (as `lite-env
    build` writes them): the bench server then sends those to the browser, as a static host
    with precompressed files or on-the-fly compression would."""
    out = SITES / name
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(base.folder, out)
    started = time.perf_counter()
    precompress(out, leave_out=(CHANNEL_DIR,))
    normalize_times(out)
    info = SiteInfo(name, str(out), base.build_s + time.perf_counter() - started, base.packages)
    info.files, info.notes = dict(base.files), [*base.notes, "served with gzip copies"]
    return info


def build_sites(names: list[str], *, cache_dir: Path, log=print) -> dict[str, SiteInfo]:
    """Build the named variants (lite-env first: stock and floor take their runtime from it;
    `<variant>+gz` is that variant served compressed)."""
    SITES.mkdir(parents=True, exist_ok=True)
    built = {}
    derived = ("stock", "floor")
    bases = sorted({n.removesuffix(COMPRESSED) for n in names})
    order = sorted(bases, key=lambda n: (n not in ("lite-env", "lite-env-none"), n in derived, n))
    for name in [*order, *(n for n in names if n.endswith(COMPRESSED))]:
        log(f"[sites] building {name}")
        if name.endswith(COMPRESSED):
            built[name] = served_compressed(name, built[name.removesuffix(COMPRESSED)])
        elif name == "stock":
            built[name] = build_stock(cache_dir=cache_dir)
        elif name == "floor":
            built[name] = build_floor(cache_dir=cache_dir)
        else:
            built[name] = build_lite_env(name, cache_dir=cache_dir)
        log(f"[sites] {name}: {built[name].build_s:.1f} s")
    path = WORK / "sites.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    known.update({n: asdict(i) for n, i in built.items()})
    path.write_text(json.dumps(known, indent=2))
    return built


if __name__ == "__main__":
    from lite_env.cache import cache_dir as default_cache

    wanted = sys.argv[1:] or ["lite-env", "stock", "floor"]
    with tempfile.TemporaryDirectory():
        for info in build_sites(wanted, cache_dir=default_cache()).values():
            print(json.dumps(asdict(info), indent=2)[:3000])

"""Build rattler-build recipes from recipes/ into the channel.

A recipe declares, under `extra:`, the files its `source:` entries name (each pinned by sha256
there) and where they come from: `npm-sources` (`npm pack`), `pypi-sources` (sdists, `pip
download`), `debian-sources` (source tarballs, `apt-get source`) and `debian-packages`
(binary packages of Debian unstable, `apt-get download`). `extra.toolchain:
emscripten` builds it with lite-env's emscripten toolchain (lite_env.channel.toolchain): its
build script starts with `. "$RECIPE_DIR/toolchain.sh"`, which exports the toolchain's variables
(EMCC, CFLAGS, LDFLAGS, LITE_ENV_PYTHON...; rattler-build gives scripts a clean environment).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath

import rattler_build

from lite_env.channel.built import copy_package, recipe_key, restore, store
from lite_env.channel.debian import AptArchive
from lite_env.channel.meson import ensure_meson
from lite_env.channel.sources import (
    DebianPackage,
    DebianSource,
    NpmSource,
    PypiSource,
    Source,
    fetch_npm_source,
    fetch_pypi_source,
    pinned_file,
)
from lite_env.channel.toolchain import SUITE, ensure_toolchain
from lite_env.errors import LiteEnvError
from lite_env.platform import PLATFORM

RECIPE_FILE = "recipe.yaml"
VARIANTS_FILE = "variants.yaml"
#: Lines of the failed build script's log shown in the error's hint.
LOG_TAIL_LINES = 40
#: The toolchains a recipe may ask for with `extra.toolchain`.
TOOLCHAINS = ("emscripten",)
#: The file beside a staged recipe that exports the toolchain's variables to its build script.
TOOLCHAIN_SCRIPT = "toolchain.sh"


def recipe_outputs(recipe_dir: Path) -> list[PurePosixPath]:
    """The package files the recipe builds, relative to the channel (`<subdir>/<name>.conda`).

    Found by rendering the recipe for emscripten-wasm32, without building or fetching anything.
    """
    _, variants = _render(recipe_dir)
    return [_output_path(variant) for variant in variants]


def npm_sources(recipe_dir: Path) -> list[NpmSource]:
    """The recipe's `extra.npm-sources`, each with the sha256 of its `source:` entry."""
    return [s for s in recipe_sources(recipe_dir) if isinstance(s, NpmSource)]


def recipe_sources(recipe_dir: Path) -> list[Source]:
    """The files the recipe fetches (`extra.npm-sources`, `pypi-sources`,
    `debian-sources`, `debian-packages`)."""
    return _sources(recipe_dir, *_render(recipe_dir))


def recipe_requirements(recipe_dir: Path) -> tuple[set[str], set[str]]:
    """The package names the recipe builds, and those its build and host requirements name."""
    _, variants = _render(recipe_dir)
    provides, needs = set(), set()
    for variant in variants:
        stage1 = variant.recipe.to_dict()
        provides.add(stage1["package"]["name"])
        requirements = stage1.get("requirements") or {}
        for spec in (*requirements.get("build", []), *requirements.get("host", [])):
            if isinstance(spec, str) and spec.split():
                needs.add(spec.split()[0])
    return provides, needs - provides


def recipe_packages(recipes_dir: Path) -> set[str]:
    """The names of the packages the recipes under recipes_dir build."""
    return {
        name
        for path in recipes_dir.glob(f"*/{RECIPE_FILE}")
        for name in recipe_requirements(path.parent)[0]
    }


def order_recipes(recipe_dirs: Sequence[Path]) -> list[Path]:
    """The recipe folders in build order: a recipe comes after those building its host
    (and build) requirements; otherwise in sorted order. A cycle is kept in sorted order."""
    pending = sorted(recipe_dirs)
    provides, needs = {}, {}
    for recipe in pending:
        provides[recipe], needs[recipe] = recipe_requirements(recipe)
    ordered: list[Path] = []
    while pending:
        waiting = {name for recipe in pending for name in provides[recipe]}
        ready = next((r for r in pending if not needs[r] & waiting), pending[0])
        ordered.append(ready)
        pending.remove(ready)
    return ordered


def recipe_toolchain(recipe_dir: Path) -> str | None:
    """The toolchain the recipe asks for with `extra.toolchain` (`emscripten`), or None."""
    recipe, _ = _render(recipe_dir)
    return _toolchain(recipe_dir, recipe)


def fetch_source(source: Source, *, cache_dir: Path) -> Path:
    """Return the cached file of a source, fetching and checking it first when needed."""
    if isinstance(source, NpmSource):
        return fetch_npm_source(source, cache_dir=cache_dir)
    if isinstance(source, PypiSource):
        return fetch_pypi_source(source, cache_dir=cache_dir)
    if isinstance(source, DebianPackage):
        return fetch_debian_package(source, cache_dir=cache_dir)
    return fetch_debian_source(source, cache_dir=cache_dir)


def fetch_debian_source(source: DebianSource, *, cache_dir: Path) -> Path:
    """Return `cache_dir/debian/<file>`, running `apt-get source --download-only` if needed.

    apt runs with a private configuration listing the deb-src of the toolchain's Debian
    release and of sid (newer upstream releases; the pinned version picks one) on the host's
    Debian mirror; the host's apt setup is not touched.
    """
    folder = cache_dir / "debian"

    def download(scratch: Path) -> Path:
        AptArchive(folder / "apt", [SUITE, "sid"], sources=True).source(
            source.package, source.version, scratch
        )
        downloaded = scratch / source.file
        if not downloaded.is_file():
            raise LiteEnvError(
                f"`apt-get source {source.package}={source.version}` wrote no {source.file}",
                hint="files written: "
                + (", ".join(sorted(p.name for p in scratch.iterdir())) or "none"),
            )
        return downloaded

    what = f"Debian source {source.package} {source.version}: {source.file}"
    return pinned_file(folder, source, what, "Debian's archive", download)


def fetch_debian_package(source: DebianPackage, *, cache_dir: Path) -> Path:
    """Return `cache_dir/debian/<file>`, running `apt-get download package=version` if needed.

    apt runs with a private configuration listing Debian unstable on the host's mirror (binary
    packages of a newer release than the toolchain's, e.g. the CPython stdlib of the runtime's
    Python version); the host's apt setup is not touched.
    """
    folder = cache_dir / "debian"

    def download(scratch: Path) -> Path:
        archive = AptArchive(folder / "apt-unstable", ["sid"])
        deb = archive.download(f"{source.package}={source.version}", scratch)
        if deb.name != source.file:
            raise LiteEnvError(
                f"`apt-get download {source.package}={source.version}` wrote {deb.name},"
                f" not {source.file}",
                hint="correct the file name in the recipe's extra.debian-packages entry",
            )
        return deb

    what = f"Debian package {source.package} {source.version}: {source.file}"
    return pinned_file(folder, source, what, "Debian's archive", download)


def build_recipe(
    recipe_dir: Path,
    channel_dir: Path,
    *,
    cache_dir: Path,
    report: Callable[[str], None] = lambda message: None,
) -> list[Path]:
    """Build the recipe for emscripten-wasm32 into `channel_dir/<subdir>/` and return its packages.

    Args:
        recipe_dir: a folder holding `recipe.yaml` (and files it refers to); it is not modified.
        channel_dir: the channel; its packages are also offered to the build's host requirements.
        cache_dir: lite-env's cache folder (npm tarballs in `npm/`, sdists in `sdists/`, Debian
            sources in `debian/`, the toolchain in `toolchain/`, rattler's caches in `rattler/`).
        report: gets a line for each slow step (setting up the toolchain).

    A published package is never rebuilt in place: when the channel already holds every output,
    nothing is built; otherwise only the missing files are added (mode 0644), copied from
    `cache_dir/built/` when the same recipe files were built with the same toolchain before
    (lite_env.channel.built). Call
    `rattler.index.index_fs` on the channel afterwards. For a recipe with `extra.toolchain:
    emscripten`, `ensure_toolchain` sets the toolchain up (once) and the staged recipe gets
    `toolchain.sh`, exporting its variables for the build script to source.
    Raises LiteEnvError when a source cannot be fetched or verified, the toolchain cannot be
    set up, or the build fails (the hint holds the build log's tail).
    """
    recipe_dir = recipe_dir.absolute()
    channel_dir = channel_dir.absolute()
    recipe, variants = _render(recipe_dir)
    outputs = [channel_dir / _output_path(variant) for variant in variants]
    if all(path.is_file() for path in outputs):
        return outputs
    toolchain = _toolchain(recipe_dir, recipe)
    key = recipe_key(recipe_dir, cache_dir=cache_dir, toolchain=toolchain)
    if key is not None and restore(key, outputs, cache_dir=cache_dir):
        return outputs  # built before, from the same recipe and toolchain, for another channel
    sources = _sources(recipe_dir, recipe, variants)
    environment: dict[str, str] = {}
    if toolchain == "emscripten":
        emscripten = ensure_toolchain(cache_dir, report=report)
        environment = {**emscripten.env(), **ensure_meson(emscripten, report=report).env()}
    with tempfile.TemporaryDirectory(prefix="lite-env-build-") as staging:
        staged = Path(staging) / "recipe"
        shutil.copytree(recipe_dir, staged, symlinks=True)
        added = []
        for source in sources:
            shutil.copyfile(fetch_source(source, cache_dir=cache_dir), staged / source.file)
            added.append(source.file)
        if environment:
            # rattler-build gives build scripts a clean environment: the script sources this
            # file (`. "$RECIPE_DIR/toolchain.sh"`); the chroot also binds the staging folder
            environment["LITE_ENV_CHROOT_BINDS"] = str(Path(staging).resolve())
            (staged / TOOLCHAIN_SCRIPT).write_text(_exports(environment))
            added.append(TOOLCHAIN_SCRIPT)
        if added:  # downloaded sources and the toolchain's paths stay out of info/recipe/
            with (staged / ".condapackageignore").open("a") as ignore:
                ignore.writelines(f"\n/{name}\n" for name in added)
        built = Path(staging) / "out"
        try:
            _run_build(staged / RECIPE_FILE, built, channel_dir=channel_dir, cache_dir=cache_dir)
        except rattler_build.RattlerBuildError as error:
            logs = sorted(built.glob("bld/*/work/conda_build.log"), key=os.path.getmtime)
            raise LiteEnvError(
                f"{recipe_dir / RECIPE_FILE}: rattler-build failed: {error}",
                hint=_tail(logs[-1].read_text(errors="replace")) if logs else None,
            ) from None
        for path in outputs:
            if not path.is_file():
                _publish(built / path.parent.name / path.name, path)
    key = recipe_key(recipe_dir, cache_dir=cache_dir, toolchain=toolchain)
    if key is not None:
        store(key, outputs, cache_dir=cache_dir)
    return outputs


def _render(
    recipe_dir: Path,
) -> tuple[rattler_build.Stage0Recipe, list[rattler_build.RenderedVariant]]:
    """Parse the recipe and render its outputs for emscripten-wasm32 (variants.yaml applied)."""
    path = recipe_dir / RECIPE_FILE
    variants_file = recipe_dir / VARIANTS_FILE
    try:
        recipe = rattler_build.Stage0Recipe.from_file(path)
        variant_config = (
            rattler_build.VariantConfig.from_file(variants_file)
            if variants_file.is_file()
            else rattler_build.VariantConfig()
        )
        platform = rattler_build.PlatformConfig(target_platform=PLATFORM)
        render_config = rattler_build.RenderConfig(platform=platform)
        return recipe, recipe.render(variant_config, render_config)
    except (rattler_build.RattlerBuildError, OSError) as error:
        raise LiteEnvError(f"{path}: cannot read the recipe", hint=str(error)) from None


def _output_path(variant: rattler_build.RenderedVariant) -> PurePosixPath:
    stage1 = variant.recipe
    subdir = "noarch" if stage1.build.noarch else PLATFORM
    name = f"{stage1.package.name}-{stage1.package.version}-{stage1.build.string}.conda"
    return PurePosixPath(subdir, name)


def _sources(
    recipe_dir: Path,
    recipe: rattler_build.Stage0Recipe,
    variants: list[rattler_build.RenderedVariant],
) -> list[Source]:
    path = recipe_dir / RECIPE_FILE
    extra = recipe.to_dict().get("extra") or {}
    pins = {
        entry["path"]: entry.get("sha256")
        for variant in variants
        for entry in variant.recipe.to_dict().get("source", [])
        if "path" in entry
    }
    kinds = {
        "npm-sources": (NpmSource, ("spec",), "{spec: pkg@1.0.0, file: pkg-1.0.0.tgz}"),
        "pypi-sources": (PypiSource, ("spec",), "{spec: pkg==1.0, file: pkg-1.0.tar.gz}"),
        "debian-sources": (
            DebianSource,
            ("package", "version"),
            "{package: pkg, version: 1.0-1, file: pkg_1.0.orig.tar.gz}",
        ),
        "debian-packages": (
            DebianPackage,
            ("package", "version"),
            "{package: pkg, version: 1.0-1, file: pkg_1.0-1_amd64.deb}",
        ),
    }
    sources: list[Source] = []
    for key, (kind, fields, example) in kinds.items():
        for entry in extra.get(key) or []:
            values = [entry.get(field) if isinstance(entry, dict) else None for field in fields]
            file = entry.get("file") if isinstance(entry, dict) else None
            if not all(values) or not file or not pins.get(file):
                raise LiteEnvError(
                    f"{path}: {key} entry {entry} needs {', '.join(fields)}, a file and a"
                    " `source:` entry for that file with its sha256",
                    hint=f"e.g. extra: {{{key}: [{example}]}} and source: [{{path: <file>,"
                    " sha256: ...}]",
                )
            source = kind(*(str(v) for v in values), str(file), pins[file])
            if isinstance(source, PypiSource) and entry.get("backend"):
                source = dataclasses.replace(source, backend=str(entry["backend"]))
            sources.append(source)
    return sources


def _toolchain(recipe_dir: Path, recipe: rattler_build.Stage0Recipe) -> str | None:
    toolchain = (recipe.to_dict().get("extra") or {}).get("toolchain")
    if toolchain is not None and toolchain not in TOOLCHAINS:
        raise LiteEnvError(
            f"{recipe_dir / RECIPE_FILE}: unknown extra.toolchain {toolchain!r}",
            hint=f"lite-env knows: {', '.join(TOOLCHAINS)}",
        )
    return toolchain


def _run_build(recipe: Path, output_dir: Path, *, channel_dir: Path, cache_dir: Path) -> None:
    """Build with rattler-build into output_dir (its scratch files included)."""
    channels = [channel_dir.as_uri()] if channel_dir.is_dir() else []
    # `build_recipes` is deprecated, but its successor `run_build` solves host requirements
    # for the build machine's platform instead of the target (rattler-build 0.73).
    with _environ(RATTLER_CACHE_DIR=str(cache_dir / "rattler")), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        rattler_build.build_recipes(
            [recipe], target_platform=PLATFORM, channel=channels, output_dir=output_dir
        )


def _publish(built: Path, target: Path) -> None:
    """Copy a built package into the channel as a 0644 file, never replacing an existing one."""
    if not built.is_file():
        raise LiteEnvError(
            f"rattler-build did not write {target.parent.name}/{target.name}",
            hint="its outputs differ from the rendered recipe; this is a bug in lite-env",
        )
    copy_package(built, target)


def _exports(environment: dict[str, str]) -> str:
    lines = [f"export {name}={shlex.quote(value)}\n" for name, value in sorted(environment.items())]
    return "# lite-env: the toolchain's variables for this build\n" + "".join(lines)


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

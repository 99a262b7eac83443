"""Build rattler-build recipes from recipes/ into the channel."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import rattler_build

from lite_env.errors import LiteEnvError
from lite_env.solve import PLATFORM

RECIPE_FILE = "recipe.yaml"
VARIANTS_FILE = "variants.yaml"
#: Lines of the failed build script's log shown in the error's hint.
LOG_TAIL_LINES = 40
#: Seconds `npm pack` may take.
NPM_TIMEOUT = 600


@dataclass(frozen=True)
class NpmSource:
    """A source file a recipe takes from npm: `npm pack <spec>` writes `file` (sha256 pinned)."""

    spec: str
    file: str
    sha256: str


def recipe_outputs(recipe_dir: Path) -> list[PurePosixPath]:
    """The package files the recipe builds, relative to the channel (`<subdir>/<name>.conda`).

    Found by rendering the recipe for emscripten-wasm32, without building or fetching anything.
    """
    _, variants = _render(recipe_dir)
    return [_output_path(variant) for variant in variants]


def npm_sources(recipe_dir: Path) -> list[NpmSource]:
    """The recipe's `extra.npm-sources`, each with the sha256 of its `source:` entry."""
    return _npm_sources(recipe_dir, *_render(recipe_dir))


def fetch_npm_source(source: NpmSource, *, cache_dir: Path) -> Path:
    """Return `cache_dir/npm/<file>`, running `npm pack` unless it is there with the pinned sha256.

    Raises LiteEnvError when npm is missing, `npm pack` fails or the sha256 does not match.
    """
    folder = cache_dir / "npm"
    target = folder / source.file
    if target.is_file() and _sha256(target) == source.sha256:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise LiteEnvError(
            f"cannot fetch {source.spec}: npm is not installed",
            hint="install Node.js and npm (e.g. `apt-get install nodejs npm`), then try again",
        )
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".npm-pack-", dir=folder) as scratch:
        command = [npm, "pack", source.spec, "--ignore-scripts", "--pack-destination", scratch]
        try:
            done = subprocess.run(
                command, cwd=scratch, capture_output=True, text=True, timeout=NPM_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            raise LiteEnvError(
                f"`npm pack {source.spec}` did not finish within {NPM_TIMEOUT} s",
                hint="check npm's registry and proxy settings (`npm config list`)",
            ) from None
        packed = Path(scratch) / source.file
        if done.returncode != 0 or not packed.is_file():
            raise LiteEnvError(
                f"`npm pack {source.spec}` failed to write {source.file}",
                hint=_tail(done.stderr + done.stdout) or f"npm exited with {done.returncode}",
            )
        actual = _sha256(packed)
        if actual != source.sha256:
            raise LiteEnvError(
                f"{source.spec}: {source.file} has sha256 {actual},"
                f" the recipe pins {source.sha256}",
                hint="the npm registry (or its mirror) served other bytes: check npm's registry"
                " setting, or update the pin in the recipe if the change is expected",
            )
        os.replace(packed, target)
    return target


def build_recipe(recipe_dir: Path, channel_dir: Path, *, cache_dir: Path) -> list[Path]:
    """Build the recipe for emscripten-wasm32 into `channel_dir/<subdir>/` and return its packages.

    Args:
        recipe_dir: a folder holding `recipe.yaml` (and files it refers to); it is not modified.
        channel_dir: the channel; its packages are also offered to the build's host requirements.
        cache_dir: lite-env's cache folder (npm tarballs in `npm/`, rattler's caches in `rattler/`).

    A published package is never rebuilt in place: when the channel already holds every output,
    nothing is built; otherwise only the missing files are added (mode 0644). Call
    `rattler.index.index_fs` on the channel afterwards. Raises LiteEnvError when a source cannot
    be fetched or verified, or the build fails (the hint holds the build log's tail).
    """
    recipe_dir = recipe_dir.absolute()
    channel_dir = channel_dir.absolute()
    recipe, variants = _render(recipe_dir)
    outputs = [channel_dir / _output_path(variant) for variant in variants]
    if all(path.is_file() for path in outputs):
        return outputs
    sources = _npm_sources(recipe_dir, recipe, variants)
    with tempfile.TemporaryDirectory(prefix="lite-env-build-") as staging:
        staged = Path(staging) / "recipe"
        shutil.copytree(recipe_dir, staged, symlinks=True)
        for source in sources:
            shutil.copyfile(fetch_npm_source(source, cache_dir=cache_dir), staged / source.file)
        if sources:  # downloaded sources stay out of the packages' info/recipe/
            with (staged / ".condapackageignore").open("a") as ignore:
                ignore.writelines(f"\n/{source.file}\n" for source in sources)
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


def _npm_sources(
    recipe_dir: Path,
    recipe: rattler_build.Stage0Recipe,
    variants: list[rattler_build.RenderedVariant],
) -> list[NpmSource]:
    path = recipe_dir / RECIPE_FILE
    extra = recipe.to_dict().get("extra") or {}
    pins = {
        entry["path"]: entry.get("sha256")
        for variant in variants
        for entry in variant.recipe.to_dict().get("source", [])
        if "path" in entry
    }
    sources = []
    for entry in extra.get("npm-sources", []):
        spec, file = entry.get("spec"), entry.get("file")
        if not spec or not file or not pins.get(file):
            raise LiteEnvError(
                f"{path}: npm source {entry} needs a spec, a file and a `source:` entry"
                " for that file with its sha256",
                hint="e.g. extra: {npm-sources: [{spec: pkg@1.0.0, file: pkg-1.0.0.tgz}]} and"
                " source: [{path: pkg-1.0.0.tgz, sha256: ...}]",
            )
        sources.append(NpmSource(spec, file, pins[file]))
    return sources


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
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    shutil.copyfile(built, partial)
    partial.chmod(0o644)
    if target.exists():
        partial.unlink()
    else:
        os.replace(partial, target)


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


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

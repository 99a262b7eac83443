"""The whole pipeline in one call: environment.yml → lock → prefix → bytecode → image → site.

Intermediate results are kept in the cache under a key of the locked records and the build
options, so a rebuild with an unchanged lock only re-emits the site.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from rattler import MatchSpec
from rich.filesize import decimal

from lite_env import __version__
from lite_env.bytecode import compile_bytecode
from lite_env.extensions import LabExtension, environment_extensions
from lite_env.files import write_atomically
from lite_env.install import install_prefix
from lite_env.kernel import KERNEL_IMPORTS, snapshot_modules
from lite_env.lock import Lock, lock_environment, locked_records
from lite_env.options import BuildOptions
from lite_env.pack import Chunk, Image, PackRules, pack, read_image
from lite_env.pyodide_node import RUNTIME_DIR
from lite_env.site import Site, build_site
from lite_env.site_channel import channel_source
from lite_env.snapshot import Snapshot, make_snapshot
from lite_env.spec import EnvSpec

DONE = "done.json"
#: Bumped when the build changes what the same lock gives (2: standard library bytecode;
#: 3: lazy chunks; 4: their metadata written at start; 5: extension modules may be lazy).
BUILD_FORMAT = 5


@dataclass(frozen=True)
class PreparedImage:
    """The environment up to its image: what a site needs besides jupyterlite-core's apps."""

    lock: Lock
    image: Image
    runtime_dir: Path
    provides: tuple[str, ...]
    reused: bool
    snapshot: Snapshot | None = None
    #: the JupyterLab extensions in the installed prefix (the site serves them, not the image)
    extensions: tuple[LabExtension, ...] = ()

    @property
    def depends(self) -> dict[str, list[str]]:
        """Each package's dependencies, by name."""
        return {
            r.name.normalized: sorted({MatchSpec(d).name.normalized for d in r.depends})
            for r in self.lock.records
        }

    bytecode_problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Build:
    """What `build` produced."""

    prepared: PreparedImage
    site: Site

    @property
    def extensions(self) -> tuple[LabExtension, ...]:
        """The JupyterLab extensions installed into the site, each with its package."""
        return self.site.extensions

    @property
    def lazy(self) -> tuple[Chunk, ...]:
        """The image's chunks written on their first import."""
        return tuple(chunk for chunk in self.prepared.image.chunks if chunk.lazy)

    def warnings(self) -> list[str]:
        """What the build met that is worth a warning: sources that did not compile, modules
        that did not import for bytecode (the snapshot's misses are in Snapshot.failed)."""
        return [f"bytecode: {problem}" for problem in self.prepared.bytecode_problems]

    def to_json(self) -> dict:
        """The build's summary (`lite-env build --json`)."""
        prepared = self.prepared
        return {
            "site": str(self.site.folder),
            "packages": len(prepared.lock.records),
            "image": {
                "manifest": prepared.image.manifest,
                "chunks": len(prepared.image.chunks),
                "bytes": prepared.image.size,
                "raw_bytes": prepared.image.raw_size,
                "lazy_packages": [c.package for c in self.lazy],
                "lazy_bytes": sum(c.size for c in self.lazy),
            },
            "reused_image": prepared.reused,
            "extensions": [
                {"name": e.name, "version": e.version, "package": e.package}
                for e in self.extensions
            ],
        }

    def lines(self) -> list[str]:
        """The build's summary for a person, one line each."""
        prepared = self.prepared
        lines = [
            f"built {self.site.folder}: {len(prepared.lock.records)} packages, image"
            f" {decimal(prepared.image.size)} in {len(prepared.image.chunks)} chunks"
            f" ({decimal(prepared.image.raw_size)} unpacked)"
            + (", reused from the cache" if prepared.reused else "")
        ]
        if self.lazy:
            lines.append(
                f"  fetched on first import ({decimal(sum(c.size for c in self.lazy))}):"
                f" {', '.join(c.package for c in self.lazy)}"
            )
        for extension in self.extensions:
            lines.append(f"  extension {extension.name} {extension.version} ({extension.package})")
        return lines


def prepare_image(
    spec: EnvSpec,
    options: BuildOptions | None = None,
    *,
    cache_dir: Path,
    report: Callable[[str], None] = lambda message: None,
) -> PreparedImage:
    """Lock (or read the lock), install, compile and pack the environment, reusing the cache.

    Args:
        spec: the environment.
        options: the build's options (default: the environment file's `lite-env:` section);
            `locked` uses the lock as it is and fails if it does not match the spec;
            `snapshot` (with mode "image") also makes a memory snapshot of the interpreter
            with the kernel's modules (and the `preload` ones) imported.
        cache_dir: lite-env's cache folder.
        report: receives a line for each stage as it starts.
    """
    options = options or spec.options
    rules = PackRules.from_options(options)
    bytecode = options.bytecode
    snapshot = options.shipped_snapshot
    preload = (*KERNEL_IMPORTS, *options.preload)
    report("locking")
    lock = (
        locked_records(spec, cache_dir=cache_dir)
        if options.locked
        else lock_environment(spec, cache_dir=cache_dir)
    )
    key = _build_key(lock, bytecode, preload, rules, snapshot, options.lazy)
    work = cache_dir / "builds" / key
    done = work / DONE
    problems: tuple[str, ...] = ()
    reused = _read_record(work)
    if reused:
        image, made = reused
    else:
        shutil.rmtree(work, ignore_errors=True)
        report("installing")
        prefix = install_prefix(lock.records, work / "prefix", cache_dir=cache_dir)
        report("compiling bytecode in Pyodide")
        # the runtime's python_stdlib.zip is replaced by one with the same modules' bytecode
        compiled = compile_bytecode(
            prefix,
            work / "bytecode",
            mode=bytecode,
            preload=preload,
            stdlib=prefix / RUNTIME_DIR,
        )
        problems = compiled.problems
        report("packing")
        # laziness needs the trace of what the start imports, which bytecode "none" skips
        traced = options.lazy and bytecode != "none"
        image = pack(
            prefix,
            work / "image",
            rules=rules,
            overlay=work / "bytecode",
            started=compiled.imported if traced else None,
        )
        made = None
        if snapshot:
            report("making the memory snapshot")
            modules = snapshot_modules(compiled.imported, options.preload)
            made = make_snapshot(prefix, work / "image", modules=modules)
        record = {"manifest": image.manifest, "snapshot": asdict(made) if made else None}
        write_atomically(done, json.dumps(record))
    provides = tuple(_provided_names(lock, image))
    runtime = work / "prefix" / RUNTIME_DIR
    extensions = environment_extensions(work / "prefix")
    return PreparedImage(
        lock,
        image,
        runtime,
        provides,
        reused is not None,
        snapshot=made,
        bytecode_problems=problems,
        extensions=extensions,
    )


def build(
    spec: EnvSpec,
    output: Path,
    options: BuildOptions | None = None,
    *,
    cache_dir: Path,
    report: Callable[[str], None] = lambda message: None,
) -> Build:
    """Build the site for `spec` into `output` (replaced only when the build succeeds).

    `options` default to the environment file's `lite-env:` section; the other arguments are
    prepare_image's.
    """
    options = options or spec.options
    prepared = prepare_image(spec, options, cache_dir=cache_dir, report=report)
    report("building the site")
    site = build_site(
        prepared.image,
        prepared.runtime_dir,
        output,
        provides=prepared.provides,
        depends=prepared.depends,
        snapshot=prepared.snapshot,
        extensions=prepared.extensions,
        options=options,
        channel=channel_source(spec, prepared.lock.records) if options.channel_in_site else None,
    )
    return Build(prepared, site)


def _read_record(work: Path) -> tuple[Image, Snapshot | None] | None:
    """The image (and snapshot) of a finished build in `work`; None when there is none, or
    its record is torn or names files that are gone (the build is then made anew)."""
    try:
        record = json.loads((work / DONE).read_text())
        image = read_image(work / "image", record["manifest"])
        made = Snapshot(**record["snapshot"]) if record["snapshot"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    files = [chunk.file for chunk in image.chunks] + ([made.file] if made else [])
    if not all((work / "image" / name).is_file() for name in files):
        return None
    return image, made


def _build_key(
    lock: Lock,
    bytecode: str,
    preload: Sequence[str],
    rules: PackRules,
    snapshot: bool,
    lazy: bool,
) -> str:
    content = {
        "lite-env": __version__,
        "format": BUILD_FORMAT,
        "snapshot": snapshot,
        "records": sorted(r.sha256.hex() if r.sha256 else r.url for r in lock.records),
        "bytecode": bytecode,
        "preload": list(preload),
        "rules": [rules.exclude, rules.keep, sorted(rules.exclude_by_package.items())],
        "lazy": lazy,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:20]


def _provided_names(lock: Lock, image: Image) -> list[str]:
    """The environment's package names, as conda and as PyPI (its dist-info folders) spell them."""
    names = {r.name.normalized for r in lock.records}
    for chunk in image.chunks:
        for path in (file.path for file in chunk.files):
            folder = path.split("/")[-2] if "/" in path else ""
            if folder.endswith(".dist-info"):
                names.add(canonicalize_name(folder.removesuffix(".dist-info").rsplit("-", 1)[0]))
    return sorted(names)

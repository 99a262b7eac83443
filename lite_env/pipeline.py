"""The whole pipeline in one call: environment.yml → lock → prefix → bytecode → image → site
(one site may hold several environments, a kernel each).

Intermediate results are kept in the cache under a key of the locked records and the build
options, so a rebuild with an unchanged lock only re-emits the site.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn

from packaging.utils import canonicalize_name
from rattler import MatchSpec
from rich.filesize import decimal

from lite_env import __version__
from lite_env.bytecode import compile_bytecode
from lite_env.errors import LiteEnvError
from lite_env.extensions import LabExtension, environment_extensions
from lite_env.files import write_atomically
from lite_env.install import install_prefix
from lite_env.kernel import KERNEL_IMPORTS, snapshot_modules
from lite_env.lock import Lock, lock_environment, locked_records
from lite_env.options import BuildOptions
from lite_env.pack import Image, PackRules, pack, read_image
from lite_env.pyodide_node import RUNTIME_DIR
from lite_env.site import Site, SiteEnvironment, build_site
from lite_env.site_channel import channel_source
from lite_env.snapshot import Snapshot, make_snapshot
from lite_env.spec import EnvSpec

DONE = "done.json"
#: Bumped when the build changes what the same lock gives (2: standard library bytecode;
#: 3: lazy chunks; 4: their metadata written at start; 5: extension modules may be lazy;
#: 6: shared libraries go with the lazy packages that use them; 7: so does the standard
#: library the start does not import; 8: lazy packages' licenses come with them; 9: and
#: their descriptions; 10: libraries need a shared library to be lazy).
BUILD_FORMAT = 10


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
    """What `build` produced: each environment up to its image (the first is the site's
    default kernel) and the site."""

    environments: tuple[PreparedImage, ...]
    site: Site

    @property
    def prepared(self) -> PreparedImage:
        """The first (or only) environment."""
        return self.environments[0]

    @property
    def extensions(self) -> tuple[LabExtension, ...]:
        """The JupyterLab extensions installed into the site, each with its package."""
        return self.site.extensions

    def warnings(self) -> list[str]:
        """What the build met that is worth a warning: sources that did not compile, modules
        that did not import for bytecode (the snapshot's misses are in Snapshot.failed)."""
        return [
            f"bytecode: {problem}"
            for prepared in self.environments
            for problem in prepared.bytecode_problems
        ]

    def to_json(self) -> dict:
        """The build's summary (`lite-env build --json`): the first environment's at the top,
        and every environment's under `kernels`."""
        kernels = [
            {"kernel": kernel, **_summary(prepared)}
            for kernel, prepared in zip(self.site.kernels, self.environments, strict=True)
        ]
        return {
            "site": str(self.site.folder),
            **_summary(self.prepared),
            "kernels": kernels,
            "extensions": [
                {"name": e.name, "version": e.version, "package": e.package}
                for e in self.extensions
            ],
        }

    def lines(self) -> list[str]:
        """The build's summary for a person, one line each."""
        lines = [f"built {self.site.folder}"]
        for kernel, prepared in zip(self.site.kernels, self.environments, strict=True):
            image = prepared.image
            lazy = [chunk for chunk in image.chunks if chunk.lazy]
            lines.append(
                (f"  kernel {kernel}: " if len(self.environments) > 1 else "  ")
                + f"{len(prepared.lock.records)} packages, image {decimal(image.size)} in"
                f" {len(image.chunks)} chunks ({decimal(image.raw_size)} unpacked)"
                + (", reused from the cache" if prepared.reused else "")
            )
            if lazy:
                lines.append(
                    f"    fetched on first import ({decimal(sum(c.size for c in lazy))}):"
                    f" {', '.join(c.package for c in lazy)}"
                )
        for extension in self.extensions:
            lines.append(f"  extension {extension.name} {extension.version} ({extension.package})")
        return lines


def _summary(prepared: PreparedImage) -> dict:
    """One environment's part of `lite-env build --json`."""
    image = prepared.image
    lazy = [chunk for chunk in image.chunks if chunk.lazy]
    return {
        "packages": len(prepared.lock.records),
        "image": {
            "manifest": image.manifest,
            "chunks": len(image.chunks),
            "bytes": image.size,
            "raw_bytes": image.raw_size,
            "lazy_packages": [c.package for c in lazy],
            "lazy_bytes": sum(c.size for c in lazy),
        },
        "reused_image": prepared.reused,
    }


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
    preload = (*KERNEL_IMPORTS, *options.preload)
    report("locking")
    lock = (
        locked_records(spec, cache_dir=cache_dir)
        if options.locked
        else lock_environment(spec, cache_dir=cache_dir)
    )
    key = _build_key(lock, options, preload, rules)
    work = cache_dir / "builds" / key
    problems: tuple[str, ...] = ()
    reused = _read_record(work)
    if reused is None:
        # built beside its place and moved there whole: a build of the same key in another
        # process, or one cut short, never leaves a half-made folder under the key
        work.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=work.parent))
        try:
            problems = _make_image(lock, staging, options, rules, preload, report, cache_dir)
            _publish(staging, work)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    image, made = _read_record(work) or _unreadable(work)
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
    """Build the site of one environment into `output` (see build_environments).

    `options` default to the environment file's `lite-env:` section.
    """
    return build_environments(
        [(spec, options or spec.options)], output, cache_dir=cache_dir, report=report
    )


def build_environments(
    environments: Sequence[tuple[EnvSpec, BuildOptions]],
    output: Path,
    *,
    cache_dir: Path,
    report: Callable[[str], None] = lambda message: None,
) -> Build:
    """Build one site with a kernel for each environment into `output` (replaced only when
    the build succeeds); the other arguments are prepare_image's.

    The first environment is the site's default kernel, "python"; each other one is named
    after its environment (`name:`, else its file's name). The site's own options (`contents`,
    `precompress`) are the first environment's.
    """
    several = len(environments) > 1
    kernel_names([spec for spec, _ in environments])  # a clash fails before the long part
    prepared = []
    for spec, options in environments:
        if several:
            report(f"environment {kernel_title(spec)}")
        prepared.append(prepare_image(spec, options, cache_dir=cache_dir, report=report))
    report("building the site")
    site = build_site(
        site_environments(environments, prepared, cache_dir=cache_dir),
        output,
        options=environments[0][1],
        extensions=[extension for image in prepared for extension in image.extensions],
    )
    return Build(tuple(prepared), site)


def site_environments(
    environments: Sequence[tuple[EnvSpec, BuildOptions]],
    prepared: Sequence[PreparedImage],
    *,
    cache_dir: Path,
) -> list[SiteEnvironment]:
    """The site's kernels for the prepared environments: the first is "python"; with several,
    each is named (and titled) after its environment. An environment whose channel the site
    carries (or points at, when hosted) gets its ChannelSource."""
    several = len(environments) > 1
    names = kernel_names([spec for spec, _ in environments])
    return [
        SiteEnvironment(
            kernel=names[index],
            display_name=f"Python ({kernel_title(spec)})" if several else "Python (Pyodide)",
            image=image.image,
            runtime_dir=image.runtime_dir,
            provides=image.provides,
            depends=image.depends,
            options=options,
            snapshot=image.snapshot,
            channel=channel_source(spec, image.lock.records, cache_dir=cache_dir)
            if options.channel_in_site
            else None,
        )
        for index, ((spec, options), image) in enumerate(zip(environments, prepared, strict=True))
    ]


#: The longest kernel name (it names files of the site).
KERNEL_NAME_MAX = 64


def kernel_title(spec: EnvSpec) -> str:
    """What names an environment's kernel: its `name:`, else its file's name."""
    return spec.name or spec.path.stem


def kernel_names(specs: Sequence[EnvSpec]) -> list[str]:
    """The kernel name of each environment of a site: "python" for the first, kernel_title in
    lowercase letters, digits and hyphens for the others (as kernel names are written).

    Raises LiteEnvError when two would have the same name.
    """
    names = ["python"] + [
        re.sub(r"[^a-z0-9]+", "-", kernel_title(spec).lower()).strip("-")[:KERNEL_NAME_MAX]
        or "environment"
        for spec in specs[1:]
    ]
    clashing = sorted({name for name in names if names.count(name) > 1})
    if clashing:
        raise LiteEnvError(
            f"two environments would have the same kernel name ({', '.join(clashing)})",
            hint="give each environment file its own `name:`",
        )
    return names


def lazy_stdlib_wanted(options: BuildOptions) -> bool:
    """Whether the standard library the start does not import leaves the runtime's zip for a
    lazy chunk: only the loader (mode image) writes it back, and only a trace of the start
    (bytecode "imported") says what the start imports."""
    return options.lazy and options.bytecode == "imported" and options.mode == "image"


def _make_image(
    lock: Lock,
    work: Path,
    options: BuildOptions,
    rules: PackRules,
    preload: Sequence[str],
    report: Callable[[str], None],
    cache_dir: Path,
) -> tuple[str, ...]:
    """Install, compile and pack the lock into `work` (prefix/, bytecode/, image/ and the
    record); return the bytecode problems met."""
    report("installing")
    prefix = install_prefix(lock.records, work / "prefix", cache_dir=cache_dir)
    report("compiling bytecode in Pyodide")
    # laziness needs the trace of what the start imports, which bytecode "none" skips
    traced = options.lazy and options.bytecode != "none"
    # the runtime's python_stdlib.zip is replaced by one with the same modules' bytecode
    # (and, lazily, without the top-level modules the start does not import)
    lazy_stdlib = work / "stdlib" if lazy_stdlib_wanted(options) else None
    compiled = compile_bytecode(
        prefix,
        work / "bytecode",
        mode=options.bytecode,
        preload=preload,
        stdlib=prefix / RUNTIME_DIR,
        lazy_stdlib=lazy_stdlib,
    )
    report("packing")
    image = pack(
        prefix,
        work / "image",
        rules=rules,
        overlay=work / "bytecode",
        started=compiled.imported if traced else None,
        stdlib=lazy_stdlib,
    )
    made = None
    if options.shipped_snapshot:
        report("making the memory snapshot")
        modules = snapshot_modules(compiled.imported, options.preload)
        made = make_snapshot(prefix, work / "image", modules=modules)
    record = {"manifest": image.manifest, "snapshot": asdict(made) if made else None}
    write_atomically(work / DONE, json.dumps(record))
    return compiled.problems


def _publish(staging: Path, work: Path) -> None:
    """Move a finished build to its place, unless an equal one (same key) got there first; a
    folder left there by a build cut short is moved aside (never deleted in place, where
    another process may just have put its finished build)."""
    try:
        staging.rename(work)
        return
    except OSError:
        if _read_record(work) is not None:
            return
    trash = Path(tempfile.mkdtemp(prefix=f".{work.name}.trash-", dir=work.parent))
    try:
        work.rename(trash / "torn")
        staging.rename(work)
    except OSError:
        if _read_record(work) is None:
            raise LiteEnvError(f"{work}: cannot replace a torn build", hint="delete it") from None
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def _unreadable(work: Path) -> NoReturn:
    raise LiteEnvError(f"{work}: the build's record is unreadable", hint="delete the folder")


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


def _build_key(lock: Lock, options: BuildOptions, preload: Sequence[str], rules: PackRules) -> str:
    content = {
        "lite-env": __version__,
        "format": BUILD_FORMAT,
        "snapshot": options.shipped_snapshot,
        "records": sorted(r.sha256.hex() if r.sha256 else r.url for r in lock.records),
        "bytecode": options.bytecode,
        "preload": list(preload),
        "rules": [rules.exclude, rules.keep, sorted(rules.exclude_by_package.items())],
        "lazy": options.lazy,
        "lazy_stdlib": lazy_stdlib_wanted(options),  # the runtime's zip differs
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

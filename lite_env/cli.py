"""The `lite-env` command: parses arguments, runs the stages, renders results and errors."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from lite_env import __version__
from lite_env.build import build
from lite_env.bytecode import compile_bytecode
from lite_env.cache import ENV_VAR, cache_dir
from lite_env.channel import pypi
from lite_env.channel.build import build_channel, recipe_packages
from lite_env.channel.cxxcheck import check_cxx_layout, require_cxx_layout
from lite_env.channel.index import index_channel
from lite_env.channel.pins import PypiPins, read_pins, write_pins
from lite_env.channel.toolchain import ensure_toolchain
from lite_env.channel.verify import channel_records, unresolved_depends, verify_package
from lite_env.channel.wheel import conda_name
from lite_env.errors import LiteEnvError
from lite_env.install import install_prefix
from lite_env.lock import lock_environment, locked_records
from lite_env.pack import pack
from lite_env.progress import install_progress, stderr
from lite_env.serve import make_server
from lite_env.solve import solve
from lite_env.spec import EnvSpec, read_spec

DEFAULT_ENVIRONMENT = "environment.yml"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and leave the process with its exit code.

    The exit goes through os._exit: py-rattler's runtime can crash while the interpreter
    shuts down (after the work is done), which would turn a success into exit 134 or 139.
    """
    code = run(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 done, 1 a user error, 130 interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.command(args)
    except LiteEnvError as error:
        stderr.print(f"[bold red]error:[/] {error.message}")
        if error.hint:
            stderr.print(error.hint, markup=False)
        return 1
    except KeyboardInterrupt:
        stderr.print("interrupted")
        return 130
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lite-env",
        description="Ship a conda environment (emscripten-wasm32 + noarch) into JupyterLite's"
        " Pyodide kernel: solve, lock, fetch and install it.",
    )
    parser.add_argument("--version", action="version", version=f"lite-env {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    solve_parser = commands.add_parser(
        "solve",
        help="solve an environment file and print the packages",
        description="Solve the environment for emscripten-wasm32 + noarch and print the"
        " solution (nothing is written).",
    )
    _add_common(solve_parser)
    solve_parser.add_argument("--json", action="store_true", help="print the records as JSON")
    solve_parser.set_defaults(command=cmd_solve)

    lock_parser = commands.add_parser(
        "lock",
        help="solve and write environment.lock",
        description="Solve the environment and write its lock (environment.yml →"
        " environment.lock, rattler/pixi lock format). Packages an existing lock pins stay"
        " as they are unless the spec needs otherwise or --update names them.",
    )
    _add_common(lock_parser)
    lock_parser.add_argument(
        "--update",
        metavar="NAME",
        action="append",
        default=[],
        help="re-solve this package (repeat for several)",
    )
    lock_parser.set_defaults(command=cmd_lock)

    install_parser = commands.add_parser(
        "install",
        help="fetch and install the environment into a prefix",
        description="Fetch, verify (sha256) and install the environment for emscripten-wasm32"
        " into a prefix. Without --locked the lock is updated first, as `lite-env lock` does.",
    )
    _add_common(install_parser)
    install_parser.add_argument(
        "-p", "--prefix", type=Path, required=True, help="the folder to install into (replaced)"
    )
    install_parser.add_argument(
        "--locked", action="store_true", help="install exactly the lock; fail if it is out of date"
    )
    install_parser.set_defaults(command=cmd_install)

    build_parser_ = commands.add_parser(
        "build",
        help="build a JupyterLite site whose Pyodide kernel starts with the environment",
        description="Lock (or read the lock with --locked), fetch and install the environment,"
        " precompile its bytecode with Pyodide, pack it into an image and emit a JupyterLite site"
        " that starts offline with every package preinstalled. The output folder is replaced"
        " only when the build succeeds.",
    )
    _add_common(build_parser_)
    build_parser_.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("_output"),
        help="the site folder (default: _output)",
    )
    build_parser_.add_argument(
        "--locked", action="store_true", help="build exactly the lock; fail if it is out of date"
    )
    build_parser_.add_argument(
        "--contents",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="notebooks or data to ship in the site (repeat for several)",
    )
    build_parser_.add_argument(
        "--bytecode",
        choices=["none", "imported", "all"],
        default=None,
        help="precompile the modules imported at kernel start (the default, or the environment"
        " file's `lite-env: bytecode`), all, or none",
    )
    build_parser_.add_argument(
        "--snapshot",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="ship a memory snapshot of the interpreter with the kernel's modules imported:"
        " the kernel starts in about half the time, for about 10 MB more to download",
    )
    build_parser_.add_argument(
        "--mode",
        choices=["image", "lock"],
        default="image",
        help="image: lite-env's loader mounts the image before Python starts (default);"
        " lock: no loader, Pyodide installs archives from pyodide-lock.json (slower)",
    )
    build_parser_.add_argument(
        "--allow-pypi",
        action="store_true",
        help="let %%pip install in the browser fall back to PyPI (off: the site stays offline)",
    )
    build_parser_.add_argument("--json", action="store_true", help="print a summary as JSON")
    build_parser_.set_defaults(command=cmd_build)

    pack_parser = commands.add_parser(
        "pack",
        help="pack an installed prefix into a preloadable image",
        description="Pack an installed emscripten-wasm32 prefix (see `lite-env install`) into"
        " content-addressed gzip chunks and a manifest, for lite-env's loader.",
    )
    pack_parser.add_argument("prefix", type=Path, help="the installed prefix")
    pack_parser.add_argument("-o", "--output", type=Path, required=True, help="the image folder")
    pack_parser.add_argument(
        "--bytecode", choices=["none", "imported", "all"], default="imported",
        help="which modules get .pyc compiled by Pyodide (default: imported at kernel start)",
    )  # fmt: skip
    pack_parser.add_argument(
        "--explain", action="store_true", help="report what was left out, per package"
    )
    pack_parser.set_defaults(command=cmd_pack)

    serve_parser = commands.add_parser(
        "serve",
        help="serve a built site over HTTP",
        description="Serve a built site folder over HTTP with the right content types for"
        " .wasm and .mjs. Binds 127.0.0.1 unless --host says otherwise; only files inside the"
        " folder are served.",
    )
    serve_parser.add_argument(
        "site", nargs="?", type=Path, default=Path("_output"), help="the site folder"
    )
    _add_server(serve_parser)
    serve_parser.add_argument(
        "--isolate",
        action="store_true",
        help="send cross-origin isolation headers (COOP/COEP), for SharedArrayBuffer",
    )
    serve_parser.set_defaults(command=cmd_serve)

    check_parser = commands.add_parser(
        "check",
        help="smoke-test a built site in headless Chromium",
        description="Serve the site on 127.0.0.1, open it in headless Chromium, start the Pyodide"
        " kernel, import every top-level module of the environment and report pass/fail per"
        " module, the time to kernel ready, and any request that left the site. Needs"
        " /usr/bin/chromium.",
    )
    check_parser.add_argument(
        "site", nargs="?", type=Path, default=Path("_output"), help="the site folder"
    )
    check_parser.add_argument("--timeout", type=float, default=180, help="seconds (default 180)")
    check_parser.add_argument("--screenshot", type=Path, help="save a screenshot of the page")
    check_parser.add_argument("--json", action="store_true", help="print the result as JSON")
    check_parser.set_defaults(command=cmd_check)

    channel_parser = commands.add_parser(
        "channel",
        help="build, index and serve an emscripten-wasm32 conda channel",
        description="Build recipes/ (rattler-build recipes and pinned PyPI wheels) into a conda"
        " channel for emscripten-wasm32 + noarch, index it and serve it.",
    )
    channel_commands = channel_parser.add_subparsers(
        title="commands", required=True, metavar="COMMAND"
    )
    add_pypi = channel_commands.add_parser(
        "add-pypi",
        help="pin PyPI packages (and their closure, for Pyodide) into recipes/pypi.yaml",
        description="Resolve PyPI requirements for Pyodide (markers evaluated for"
        " emscripten/wasm32, Python 3.14), download the wheels and pin them (name, version,"
        " sha256) in recipes/pypi.yaml. `channel build` then converts them into conda packages:"
        " pure wheels into noarch ones; for a project without a pure wheel, its PEP 783 wheel for"
        " the runtime's ABI (pyemscripten_2026_0_wasm32) into an emscripten-wasm32 one. A project"
        " with neither is refused: it needs a compiled recipe. A project that a recipe in"
        " recipes/ builds is not taken from PyPI: the recipe wins.",
    )
    add_pypi.add_argument(
        "requirements", nargs="*", metavar="REQUIREMENT", help="e.g. 'ipython>=9'"
    )
    add_pypi.add_argument(
        "--find-in",
        metavar="REQUIREMENT",
        action="append",
        default=[],
        help="also take wheels shipped inside this PyPI package's data files"
        " (e.g. jupyterlite-pyodide-kernel==0.8.6, which ships the kernel's own wheels)",
    )
    _add_recipes(add_pypi)
    add_pypi.set_defaults(command=cmd_channel_add_pypi)

    build = channel_commands.add_parser(
        "build",
        help="build what the channel lacks from recipes/, then index it",
        description="Build every recipe (recipes/*/recipe.yaml) and every pinned wheel"
        " (recipes/pypi.yaml) that the channel does not hold yet, then index it. A package file"
        " already in the channel is never rebuilt: locks refer to it by sha256.",
    )
    _add_recipes(build, positional=True)
    build.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("channel"),
        help="the channel folder (default: channel)",
    )
    build.set_defaults(command=cmd_channel_build)

    index = channel_commands.add_parser("index", help="(re)write the channel's repodata")
    index.add_argument(
        "channel",
        nargs="?",
        type=Path,
        default=Path("channel"),
        help="the channel folder (default: channel)",
    )
    index.set_defaults(command=cmd_channel_index)

    verify = channel_commands.add_parser(
        "verify",
        help="check every package against its paths.json, and that every dependency resolves",
    )
    verify.add_argument(
        "channel", nargs="?", type=Path, default=Path("channel"), help="the channel folder"
    )
    verify.set_defaults(command=cmd_channel_verify)

    toolchain = channel_commands.add_parser(
        "toolchain",
        help="set up (once) and cache the emscripten toolchain that compiled recipes use",
        description="Set up the toolchain that builds compiled recipes (`extra.toolchain:"
        " emscripten`) for the Pyodide 314 ABI: Debian's emscripten in an mmdebstrap chroot,"
        " CPython 3.14 headers with the runtime's wasm32 pyconfig.h, and a build venv"
        " (setuptools, Cython). Everything comes from Debian's archive, npm and PyPI and is"
        " cached under the cache folder's toolchain/; a second call returns at once. Needs"
        " root (chroot, mount namespace). `channel build` calls this by itself when a recipe"
        " needs it.",
    )
    toolchain.add_argument("--json", action="store_true", help="print the toolchain as JSON")
    toolchain.add_argument(
        "--check-cxx",
        action="store_true",
        help="also check in the runtime that the libc++ headers lay out C++ types (iostreams)"
        " like the runtime's libc++; exit 1 on a mismatch",
    )
    _add_cache_dir(toolchain)
    toolchain.set_defaults(command=cmd_channel_toolchain)

    serve = channel_commands.add_parser(
        "serve",
        help="serve the channel over HTTP",
        description="Serve the channel folder over HTTP. Binds 127.0.0.1 unless --host says"
        " otherwise; only files inside the folder are served.",
    )
    serve.add_argument(
        "channel",
        nargs="?",
        type=Path,
        default=Path("channel"),
        help="the channel folder (default: channel)",
    )
    _add_server(serve)
    serve.set_defaults(command=cmd_channel_serve)
    return parser


def _add_recipes(parser: argparse.ArgumentParser, positional: bool = False) -> None:
    help_text = "the recipes folder (default: recipes)"
    if positional:
        parser.add_argument(
            "recipes", nargs="?", type=Path, default=Path("recipes"), help=help_text
        )
    else:
        parser.add_argument("--recipes", type=Path, default=Path("recipes"), help=help_text)
    _add_cache_dir(parser)


def _add_cache_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"where downloads are cached (default: ${ENV_VAR} or the user cache folder)",
    )


def _add_server(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to bind (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="the port (default: 8000; 0 picks a free one)"
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "environment",
        nargs="?",
        type=Path,
        default=Path(DEFAULT_ENVIRONMENT),
        help=f"the conda environment file (default: {DEFAULT_ENVIRONMENT})",
    )
    _add_cache_dir(parser)


def _spec(args: argparse.Namespace) -> EnvSpec:
    spec = read_spec(args.environment)
    for warning in spec.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}")
    return spec


def cmd_solve(args: argparse.Namespace) -> None:
    records = solve(_spec(args), cache_dir=cache_dir(args.cache_dir))
    if args.json:
        print(json.dumps([_record_json(r) for r in records], indent=2))
        return
    table = Table("name", "version", "build", "channel", "size", box=None)
    for record in records:
        table.add_row(
            record.name.normalized,
            str(record.version),
            str(record.build),
            f"{record.channel}/{record.subdir}",
            decimal(record.size) if record.size else "-",
        )
    Console(highlight=False).print(table)


def cmd_lock(args: argparse.Namespace) -> None:
    spec = _spec(args)
    lock = lock_environment(spec, cache_dir=cache_dir(args.cache_dir), update=args.update)
    stderr.print(f"locked {len(lock.records)} packages in {lock.path}")


def cmd_install(args: argparse.Namespace) -> None:
    spec = _spec(args)
    cache = cache_dir(args.cache_dir)
    if args.locked:
        lock = locked_records(spec, cache_dir=cache)
    else:
        lock = lock_environment(spec, cache_dir=cache)
    with install_progress(len(lock.records), enabled=stderr.is_terminal) as reporter:
        prefix = install_prefix(lock.records, args.prefix, cache_dir=cache, reporter=reporter)
    stderr.print(f"installed {len(lock.records)} packages into {prefix}")


def cmd_build(args: argparse.Namespace) -> None:
    spec = _spec(args)
    with stderr.status("building") as status:
        result = build(
            spec,
            args.output,
            cache_dir=cache_dir(args.cache_dir),
            locked=args.locked,
            contents=args.contents,
            bytecode=args.bytecode,
            snapshot=args.snapshot,
            mode=args.mode,
            allow_pypi=args.allow_pypi,
            report=lambda message: status.update(message),
        )
    prepared = result.prepared
    lazy = [chunk for chunk in prepared.image.chunks if chunk.lazy]
    for problem in prepared.bytecode_problems:
        stderr.print(f"[yellow]warning:[/] bytecode: {problem}")
    summary = {
        "site": str(result.site.folder),
        "packages": len(prepared.lock.records),
        "image": {
            "manifest": prepared.image.manifest,
            "chunks": len(prepared.image.chunks),
            "bytes": prepared.image.size,
            "raw_bytes": prepared.image.raw_size,
            "lazy_packages": [c.package for c in lazy],
            "lazy_bytes": sum(c.size for c in lazy),
        },
        "reused_image": prepared.reused,
        "extensions": [
            {"name": e.name, "version": e.version, "package": e.package} for e in result.extensions
        ],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    stderr.print(
        f"built {result.site.folder}: {len(prepared.lock.records)} packages, image"
        f" {decimal(prepared.image.size)} in {len(prepared.image.chunks)} chunks"
        f" ({decimal(prepared.image.raw_size)} unpacked)"
        + (", reused from the cache" if prepared.reused else "")
    )
    if lazy:
        stderr.print(
            f"  fetched on first import ({decimal(sum(c.size for c in lazy))}):"
            f" {', '.join(c.package for c in lazy)}"
        )
    for extension in result.extensions:
        stderr.print(f"  extension {extension.name} {extension.version} ({extension.package})")
    stderr.print(f"serve it with `lite-env serve {args.output}`")


def cmd_pack(args: argparse.Namespace) -> None:
    if not (args.prefix / "conda-meta").is_dir():
        raise LiteEnvError(f"{args.prefix}: not an installed prefix (no conda-meta/)")
    with tempfile.TemporaryDirectory() as scratch:
        overlay = Path(scratch)
        with stderr.status("compiling bytecode in Pyodide"):
            problems = compile_bytecode(args.prefix, overlay, mode=args.bytecode).problems
        for problem in problems:
            stderr.print(f"[yellow]warning:[/] bytecode: {problem}")
        image = pack(args.prefix, args.output, overlay=overlay)
    if args.explain:
        table = Table("package", "files", "size", "dropped", "saved", box=None)
        for chunk in image.chunks:
            table.add_row(
                chunk.package,
                str(len(chunk.files)),
                decimal(chunk.raw_size),
                str(len(chunk.dropped)),
                decimal(sum(size for _, size in chunk.dropped)),
            )
        Console(highlight=False).print(table)
    stderr.print(
        f"packed {len(image.chunks)} chunks into {args.output}: {decimal(image.size)}"
        f" ({decimal(image.raw_size)} unpacked); manifest {image.manifest}"
    )


def cmd_serve(args: argparse.Namespace) -> None:
    if not (args.site / "jupyter-lite.json").is_file():
        raise LiteEnvError(f"{args.site}: not a built site (no jupyter-lite.json)")
    _serve(args.site, args, isolate=args.isolate)


def cmd_check(args: argparse.Namespace) -> None:
    from lite_env.check import check_site, site_image, top_level_modules

    if not (args.site / "jupyter-lite.json").is_file():
        raise LiteEnvError(f"{args.site}: not a built site (no jupyter-lite.json)")
    modules = top_level_modules(*site_image(args.site))
    with stderr.status(f"starting the kernel and importing {len(modules)} modules"):
        result = check_site(
            args.site, imports=modules, timeout=args.timeout, screenshot=args.screenshot
        )
    if args.json:
        print(
            json.dumps(
                {
                    "ok": result.ok,
                    "time_to_idle_s": round(result.time_to_idle_s, 2),
                    "modules": {m.name: m.error or "ok" for m in result.modules},
                    "foreign_requests": list(result.foreign_requests),
                    "bytes_received": result.bytes_received,
                    "requests": len(result.requests),
                },
                indent=2,
            )
        )
    else:
        table = Table("module", "import", box=None)
        for module in result.modules:
            if module.needs:
                outcome = f"ok, but it imports {module.needs}, which is not in the environment"
            else:
                outcome = "ok" if module.ok else f"[red]FAIL[/] {module.error}"
            table.add_row(module.name, outcome)
        Console(highlight=False).print(table)
        stderr.print(
            f"kernel ready in {result.time_to_idle_s:.1f} s;"
            f" {len(result.modules) - len(result.failed)}/{len(result.modules)} modules import;"
            f" {decimal(result.bytes_received)} received;"
            f" {len(result.foreign_requests)} requests left the site"
        )
        for url in result.foreign_requests:
            stderr.print(f"[red]outside request:[/] {url}")
    if not result.ok:
        raise LiteEnvError(f"{args.site}: the check failed")


def cmd_channel_add_pypi(args: argparse.Namespace) -> None:
    pins = read_pins(args.recipes)
    requirements = (*pins.requirements, *args.requirements)
    find_in = (*pins.find_in, *args.find_in)
    from_recipes = recipe_packages(args.recipes)
    wheels = pypi.resolve(
        requirements,
        cache_dir=cache_dir(args.cache_dir),
        preferred=pins.wheels,
        find_in=find_in,
        provided=from_recipes,
    )
    path = write_pins(args.recipes, PypiPins(tuple(requirements), tuple(find_in), tuple(wheels)))
    for requirement in args.requirements:
        name = conda_name(Requirement(requirement).name)
        if name in from_recipes:
            stderr.print(f"  = {name}: built by a recipe in {args.recipes}, not taken from PyPI")
    before = {(p.name, p.version) for p in pins.wheels}
    for wheel in wheels:
        if (wheel.name, wheel.version) not in before:
            stderr.print(f"  + {wheel.name} {wheel.version}")
    stderr.print(f"pinned {len(wheels)} wheels in {path}; `lite-env channel build` converts them")


def cmd_channel_build(args: argparse.Namespace) -> None:
    with stderr.status("building the channel") as status:
        result = build_channel(
            args.recipes,
            args.output,
            cache_dir=cache_dir(args.cache_dir),
            report=lambda message: status.update(message),
        )
    for package in result.built:
        stderr.print(f"  + {package.relative_to(result.channel)}")
    for wheel in result.skipped:
        stderr.print(f"  = {wheel.file}: skipped, a recipe builds {wheel.name}")
    stderr.print(f"{result.channel}: {len(result.built)} packages built, {len(result.kept)} kept")


def cmd_channel_toolchain(args: argparse.Namespace) -> None:
    with stderr.status("setting up the emscripten toolchain") as status:
        toolchain = ensure_toolchain(
            cache_dir(args.cache_dir), report=lambda message: status.update(message)
        )
    summary = {
        "folder": str(toolchain.folder),
        "emscripten": toolchain.emscripten,
        "headers": toolchain.headers,
        "libcxx": toolchain.libcxx,
        "include": str(toolchain.include),
        "platform": toolchain.platform,
        "abi": toolchain.abi,
        "ext_suffix": toolchain.ext_suffix,
        "bin": str(toolchain.bin),
    }
    layout = None
    if args.check_cxx:
        with stderr.status("checking the C++ layout in the runtime") as status:
            layout = check_cxx_layout(
                toolchain, cache_dir=cache_dir(args.cache_dir), report=status.update
            )
        summary["cxx_layout"] = layout.to_json()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            if key != "cxx_layout":
                stderr.print(f"{key:>11}: {value}")
        if layout is not None and layout.matches:
            stderr.print(f"{'cxx layout':>11}: matches the runtime's libc++")
    if layout is not None:
        require_cxx_layout(layout, toolchain)


def cmd_channel_index(args: argparse.Namespace) -> None:
    if not args.channel.is_dir():
        raise LiteEnvError(f"{args.channel}: no such channel folder")
    index_channel(args.channel)
    stderr.print(f"indexed {args.channel}")


def cmd_channel_verify(args: argparse.Namespace) -> None:
    if not args.channel.is_dir():
        raise LiteEnvError(f"{args.channel}: no such channel folder")
    packages = sorted(args.channel.glob("*/*.conda"))
    problems = [
        f"{package.relative_to(args.channel)}: {problem}"
        for package in packages
        for problem in verify_package(package)
    ]
    problems += [f"unresolved {d}" for d in unresolved_depends(channel_records(args.channel))]
    if problems:
        raise LiteEnvError(f"{args.channel}: {len(problems)} problems", hint="\n".join(problems))
    stderr.print(f"{args.channel}: {len(packages)} packages verified")


def cmd_channel_serve(args: argparse.Namespace) -> None:
    if not args.channel.is_dir():
        raise LiteEnvError(f"{args.channel}: no such channel folder")
    _serve(args.channel, args)


def _serve(folder: Path, args: argparse.Namespace, isolate: bool = False) -> None:
    try:
        server = make_server(folder, host=args.host, port=args.port, isolate=isolate)
    except OSError as error:
        raise LiteEnvError(f"cannot listen on {args.host}:{args.port}", hint=str(error)) from None
    host, port = server.server_address[:2]
    stderr.print(f"serving {folder} on http://{host}:{port}/ (Ctrl+C stops)")
    with server:
        server.serve_forever()


def _record_json(record) -> dict:
    return {
        "name": record.name.normalized,
        "version": str(record.version),
        "build": str(record.build),
        "build_number": record.build_number,
        "subdir": str(record.subdir),
        "channel": record.channel,
        "url": record.url,
        "file_name": record.file_name,
        "size": record.size,
        "sha256": record.sha256.hex() if record.sha256 else None,
        "depends": list(record.depends),
    }

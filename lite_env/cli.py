"""The `lite-env` command: a table of commands, each parsing its arguments, calling one library
function and printing what the result renders; user errors become one message and exit 1."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lite_env import __version__
from lite_env.bytecode import compile_bytecode
from lite_env.cache import ENV_VAR, cache_dir
from lite_env.channel.build import build_channel
from lite_env.channel.index import index_channel
from lite_env.channel.pins import add_pypi
from lite_env.channel.toolchain import ensure_toolchain
from lite_env.errors import LiteEnvError
from lite_env.firefox_check import check_site_firefox
from lite_env.install import install_prefix
from lite_env.lock import lock_environment, locked_records
from lite_env.options import BYTECODE_MODES, MODES, BuildOptions
from lite_env.pack import pack
from lite_env.pipeline import build_environments
from lite_env.progress import install_progress, labelled, stderr
from lite_env.serve import make_server
from lite_env.site import content_addressed
from lite_env.site_check import check_site, kernel_titles, site_modules
from lite_env.solve import record_json, solve
from lite_env.spec import EnvSpec, read_spec
from lite_env.verify import verify_channel

DEFAULT_ENVIRONMENT = "environment.yml"


#: What py-rattler raises when its Rust code panics (PanicException is a BaseException).
RUST_PANICS = ("PanicException", "RustPanic")


@dataclass(frozen=True)
class Command:
    """One command: its words (`channel build`), texts, arguments and the function it runs."""

    words: tuple[str, ...]
    run: Callable[[argparse.Namespace], None]
    help: str
    description: str | None
    arguments: tuple[tuple[tuple[str, ...], dict], ...]


COMMANDS: list[Command] = []


def command(name: str, help: str, *arguments: tuple, description: str | None = None):
    """Register the decorated function as the command `name` with these arguments."""

    def register(run: Callable[[argparse.Namespace], None]):
        COMMANDS.append(Command(tuple(name.split()), run, help, description, arguments))
        return run

    return register


def arg(*flags: str, **options) -> tuple[tuple[str, ...], dict]:
    """One argument, as argparse's add_argument takes it."""
    return flags, options


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and leave the process with its exit code, whatever happened.

    The exit goes through os._exit: py-rattler's runtime can crash while the interpreter
    shuts down (after the work is done), which would turn a success into exit 134 or 139.
    """
    try:
        code = run(argv)
    except SystemExit as exit:  # argparse: --help, --version, a usage error
        code = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 2
    except BaseException:  # a bug: show it, and still leave cleanly
        traceback.print_exc()
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 done, 1 a user error, 130 interrupted."""
    args = build_parser().parse_args(argv)
    try:
        args.command(args)
    except LiteEnvError as error:
        stderr.print(labelled("error:", "bold red", error.message))
        if error.hint:
            stderr.print(error.hint)
        return 1
    except KeyboardInterrupt:
        stderr.print("interrupted")
        return 130
    except BaseException as error:
        if type(error).__name__ not in RUST_PANICS:
            raise
        # py-rattler panics (a BaseException) on some hostile input, e.g. a channel's base_url
        stderr.print(labelled("error:", "bold red", f"rattler cannot go on: {error}"))
        stderr.print("the channel, lock or environment file holds something rattler refuses")
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every registered command."""
    parser = argparse.ArgumentParser(
        prog="lite-env",
        description="Ship a conda environment (emscripten-wasm32 + noarch) into JupyterLite's"
        " Pyodide kernel: solve, lock, fetch and install it.",
    )
    parser.add_argument("--version", action="version", version=f"lite-env {__version__}")
    groups = {(): parser.add_subparsers(title="commands", required=True, metavar="COMMAND")}
    for spec in COMMANDS:
        if spec.words[:-1] not in groups:  # a group such as `channel`: registered first
            raise AssertionError(f"register the `{' '.join(spec.words[:-1])}` group first")
        sub = groups[spec.words[:-1]].add_parser(
            spec.words[-1], help=spec.help, description=spec.description
        )
        for flags, options in spec.arguments:
            sub.add_argument(*flags, **options)
        if spec.run is _group:
            groups[spec.words] = sub.add_subparsers(
                title="commands", required=True, metavar="COMMAND"
            )
        sub.set_defaults(command=spec.run)
    return parser


CACHE_DIR = arg(
    "--cache-dir",
    type=Path,
    default=None,
    help=f"where downloads are cached (default: ${ENV_VAR} or the user cache folder)",
)
ENVIRONMENT = arg(
    "environment",
    nargs="?",
    type=Path,
    default=Path(DEFAULT_ENVIRONMENT),
    help="the environment: conda's environment.yml, a pixi workspace (pixi.toml,"
    f" pyproject.toml) or pip requirements (requirements.txt) (default: {DEFAULT_ENVIRONMENT})",
)
ENVIRONMENTS = arg(
    "environments",
    nargs="*",
    type=Path,
    metavar="environment",
    default=[Path(DEFAULT_ENVIRONMENT)],
    help="the environments: conda's environment.yml, a pixi workspace (pixi.toml,"
    " pyproject.toml) or pip requirements (requirements.txt); several give a site with a"
    f" kernel each, the first the default one (default: {DEFAULT_ENVIRONMENT})",
)
PIXI_ENVIRONMENT = arg(
    "-e",
    "--environment",
    metavar="NAME",
    dest="pixi_environment",
    default=None,
    help="the environment of a pixi workspace (default: default)",
)
LOCKED = arg(
    "--locked", action="store_true", help="use exactly the lock; fail if it is out of date"
)
JSON = arg("--json", action="store_true", help="print the result as JSON")
SITE = arg("site", nargs="?", type=Path, default=Path("_output"), help="the site folder")
CHANNEL = arg(
    "channel",
    nargs="?",
    type=Path,
    default=Path("channel"),
    help="the channel folder (default: channel)",
)
HOST = arg("--host", default="127.0.0.1", help="the address to bind (default: 127.0.0.1)")
PORT = arg("--port", type=int, default=8000, help="the port (default: 8000; 0 picks a free one)")


def _group(args: argparse.Namespace) -> None:
    """Stands for a group of commands (never run: argparse asks for a command)."""


def _spec(args: argparse.Namespace, path: Path | None = None) -> EnvSpec:
    spec = read_spec(path or args.environment, args.pixi_environment)
    for warning in spec.warnings:
        stderr.print(labelled("warning:", "yellow", str(warning)))
    return spec


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print rows as a table; a cell is text as it is (a rich Text keeps its style), never
    read as markup: names and messages come from environment files and channels."""
    table = Table(*headers, box=None)
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else str(cell) for cell in row))
    Console(highlight=False, markup=False).print(table)


def _plain(text: str) -> str:
    """Text from an environment file or a site, shown as it is in a status line (rich reads
    markup there): markup escaped, control characters dropped."""
    return escape("".join(c for c in text if c.isprintable()))


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


def _folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise LiteEnvError(f"{path}: no such {what} folder")
    return path


@command(
    "solve",
    "solve an environment file and print the packages",
    ENVIRONMENT,
    PIXI_ENVIRONMENT,
    CACHE_DIR,
    arg("--json", action="store_true", help="print the records as JSON"),
    description="Solve the environment for emscripten-wasm32 + noarch and print the solution"
    " (nothing is written).",
)
def cmd_solve(args: argparse.Namespace) -> None:
    records = solve(_spec(args), cache_dir=cache_dir(args.cache_dir))
    if args.json:
        _print_json([record_json(r) for r in records])
        return
    rows = [
        (
            r.name.normalized,
            r.version,
            r.build,
            f"{r.channel}/{r.subdir}",
            decimal(r.size) if r.size else "-",
        )
        for r in records
    ]
    _print_table(("name", "version", "build", "channel", "size"), rows)


@command(
    "lock",
    "solve and write the lock (environment.lock, or pixi.lock for a pixi workspace)",
    ENVIRONMENT,
    PIXI_ENVIRONMENT,
    CACHE_DIR,
    arg(
        "--update",
        metavar="NAME",
        action="append",
        default=[],
        help="re-solve this package (repeat for several)",
    ),
    description="Solve the environment and write its lock (environment.yml → environment.lock,"
    " rattler/pixi lock format). Packages an existing lock pins stay as they are unless the"
    " spec needs otherwise or --update names them.",
)
def cmd_lock(args: argparse.Namespace) -> None:
    lock = lock_environment(_spec(args), cache_dir=cache_dir(args.cache_dir), update=args.update)
    stderr.print(f"locked {len(lock.records)} packages in {lock.path}")


@command(
    "install",
    "fetch and install the environment into a prefix",
    ENVIRONMENT,
    PIXI_ENVIRONMENT,
    CACHE_DIR,
    arg("-p", "--prefix", type=Path, required=True, help="the folder to install into (replaced)"),
    LOCKED,
    description="Fetch, verify (sha256) and install the environment for emscripten-wasm32 into"
    " a prefix. Without --locked the lock is updated first, as `lite-env lock` does.",
)
def cmd_install(args: argparse.Namespace) -> None:
    spec, cache = _spec(args), cache_dir(args.cache_dir)
    lock = (locked_records if args.locked else lock_environment)(spec, cache_dir=cache)
    with install_progress(len(lock.records), enabled=stderr.is_terminal) as reporter:
        prefix = install_prefix(lock.records, args.prefix, cache_dir=cache, reporter=reporter)
    stderr.print(f"installed {len(lock.records)} packages into {prefix}")


@command(
    "build",
    "build a JupyterLite site whose Pyodide kernel starts with the environment",
    ENVIRONMENTS,
    PIXI_ENVIRONMENT,
    CACHE_DIR,
    arg(
        "-o",
        "--output",
        type=Path,
        default=Path("_output"),
        help="the site folder (default: _output)",
    ),
    LOCKED,
    arg(
        "--contents",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="notebooks or data to ship in the site (repeat for several)",
    ),
    arg(
        "--bytecode",
        choices=BYTECODE_MODES,
        default=None,
        help="precompile the modules imported at kernel start (the default, or the environment"
        " file's `lite-env: bytecode`), all, or none",
    ),
    arg(
        "--snapshot",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="ship a memory snapshot of the interpreter with the kernel's modules imported:"
        " the kernel starts in about half the time, for about 10 MB more to download",
    ),
    arg(
        "--mode",
        choices=MODES,
        default="image",
        help="image: lite-env's loader mounts the image before Python starts (default);"
        " lock: no loader, Pyodide installs archives from pyodide-lock.json (slower)",
    ),
    arg(
        "--allow-pypi",
        action="store_true",
        help="let %%pip install in the browser fall back to PyPI (off: the site stays offline)",
    ),
    arg(
        "--channel-in-site",
        action="store_true",
        default=None,
        help="the site carries the channel the build solved against, so that %%conda install"
        " in the kernel works offline (or the environment file's `lite-env: channel-in-site`)",
    ),
    arg(
        "--precompress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write a gzipped copy beside each file that shrinks, for servers that send"
        " precompressed files (lite-env serve, nginx gzip_static, Caddy; on by default)",
    ),
    arg(
        "--apps",
        type=lambda text: [app.strip() for app in text.split(",") if app.strip()],
        default=None,
        metavar="APP,...",
        help="keep only these JupyterLite apps: lab, notebooks, tree, edit, repl, consoles"
        " (default: all); the site leaves out the front-end files only the others use",
    ),
    arg(
        "--early-start",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the pages that start a kernel create the default kernel's worker as they load, so"
        " Python boots while the front end does (on by default; a page whose kernel is never"
        " started has then booted one in vain)",
    ),
    arg("--json", action="store_true", help="print a summary as JSON"),
    description="Lock (or read the lock with --locked), fetch and install the environment,"
    " precompile its bytecode with Pyodide, pack it into an image and emit a JupyterLite site"
    " that starts offline with every package preinstalled. Several environment files give one"
    " site with a kernel each (`lite-env build course.yml ml.yml`): chunks they share are"
    " stored once. The output folder is replaced only when the build succeeds.",
)
def cmd_build(args: argparse.Namespace) -> None:
    specs = [_spec(args, path) for path in args.environments]
    with stderr.status("building") as status:
        result = build_environments(
            [(spec, _build_options(spec, args)) for spec in specs],
            args.output,
            cache_dir=cache_dir(args.cache_dir),
            report=lambda message: status.update(_plain(message)),
        )
    for warning in result.warnings():
        stderr.print(labelled("warning:", "yellow", str(warning)))
    if args.json:
        _print_json(result.to_json())
        return
    for line in result.lines():
        stderr.print(line, markup=False)
    stderr.print(f"serve it with `lite-env serve {args.output}`")


def _build_options(spec: EnvSpec, args: argparse.Namespace) -> BuildOptions:
    """The environment file's `lite-env:` section with the command line's options on top."""
    return spec.options.override(
        locked=args.locked,
        contents=args.contents,
        bytecode=args.bytecode,
        snapshot=args.snapshot,
        mode=args.mode,
        allow_pypi=args.allow_pypi,
        channel_in_site=args.channel_in_site,
        precompress=args.precompress,
        early_start=args.early_start,
        apps=args.apps,
    )


@command(
    "pack",
    "pack an installed prefix into a preloadable image",
    arg("prefix", type=Path, help="the installed prefix"),
    arg("-o", "--output", type=Path, required=True, help="the image folder"),
    arg(
        "--bytecode",
        choices=BYTECODE_MODES,
        default="imported",
        help="which modules get .pyc compiled by Pyodide (default: imported at kernel start)",
    ),
    arg("--explain", action="store_true", help="report what was left out, per package"),
    description="Pack an installed emscripten-wasm32 prefix (see `lite-env install`) into"
    " content-addressed gzip chunks and a manifest, for lite-env's loader.",
)
def cmd_pack(args: argparse.Namespace) -> None:
    if not (args.prefix / "conda-meta").is_dir():
        raise LiteEnvError(f"{args.prefix}: not an installed prefix (no conda-meta/)")
    with tempfile.TemporaryDirectory() as scratch:
        overlay = Path(scratch)
        with stderr.status("compiling bytecode in Pyodide"):
            problems = compile_bytecode(args.prefix, overlay, mode=args.bytecode).problems
        for problem in problems:
            stderr.print(labelled("warning:", "yellow", f"bytecode: {problem}"))
        image = pack(args.prefix, args.output, overlay=overlay)
    if args.explain:
        rows = [
            (p, n, decimal(raw), dropped, decimal(saved))
            for p, n, raw, dropped, saved in image.explain()
        ]
        _print_table(("package", "files", "size", "dropped", "saved"), rows)
    stderr.print(
        f"packed {len(image.chunks)} chunks into {args.output}: {decimal(image.size)}"
        f" ({decimal(image.raw_size)} unpacked); manifest {image.manifest}"
    )


@command(
    "serve",
    "serve a built site over HTTP",
    SITE,
    HOST,
    PORT,
    arg(
        "--isolate",
        action="store_true",
        help="send cross-origin isolation headers (COOP/COEP), for SharedArrayBuffer",
    ),
    description="Serve a built site folder over HTTP with the right content types for .wasm"
    " and .mjs; a file's precompressed copy (name.gz, name.br) goes to browsers that accept"
    " it, and the image's files, named by their content, may be cached for good. Binds"
    " 127.0.0.1 unless --host says otherwise; only files inside the folder are served.",
)
def cmd_serve(args: argparse.Namespace) -> None:
    immutable = content_addressed(args.site)  # a built site, or a clear error
    _serve(args.site, args, isolate=args.isolate, immutable=immutable)


@command(
    "check",
    "smoke-test a built site in headless Chromium or Firefox",
    SITE,
    arg(
        "--browser",
        choices=("chromium", "firefox"),
        default="chromium",
        help="chromium (default: /usr/bin/chromium through Playwright) or firefox"
        " (/usr/bin/firefox-esr through puppeteer-core under node; see scripts/setup.sh)",
    ),
    arg("--timeout", type=float, default=180, help="seconds (default 180)"),
    arg("--screenshot", type=Path, help="save a screenshot of the page"),
    JSON,
    description="Serve the site on 127.0.0.1, open it in headless Chromium (or Firefox), start"
    " the Pyodide kernel (each kernel, in a site of several environments), import every"
    " top-level module of its environment and report pass/fail per module, the time to kernel"
    " ready, and any request that left the site. Needs /usr/bin/chromium (or firefox-esr,"
    " node and puppeteer-core for --browser firefox).",
)
def cmd_check(args: argparse.Namespace) -> None:
    titles = kernel_titles(args.site)
    results = {}
    for kernel, title in titles.items():
        modules = site_modules(args.site, kernel)
        where = f" of {title}" if len(titles) > 1 else ""
        doing = f"starting the kernel{where} and importing {len(modules)} modules"
        with stderr.status(_plain(doing)):
            check = check_site_firefox if args.browser == "firefox" else check_site
            results[kernel] = check(
                args.site,
                imports=modules,
                kernel=title,
                timeout=args.timeout,
                screenshot=args.screenshot,
            )
    if args.json:
        if len(results) == 1:
            _print_json(next(iter(results.values())).to_json())
        else:
            ok = all(result.ok for result in results.values())
            _print_json({"ok": ok, "kernels": {k: r.to_json() for k, r in results.items()}})
    else:
        for kernel, result in results.items():
            if len(results) > 1:
                stderr.print(f"kernel {kernel} ({titles[kernel]})", markup=False)
            _print_table(("module", "import"), result.rows())
            for line in result.lines():
                stderr.print(line)
    if not all(result.ok for result in results.values()):
        raise LiteEnvError(f"{args.site}: the check failed")


command(
    "channel",
    "build, index and serve an emscripten-wasm32 conda channel",
    description="Build recipes/ (rattler-build recipes and pinned PyPI wheels) into a conda"
    " channel for emscripten-wasm32 + noarch, index it and serve it.",
)(_group)


@command(
    "channel add-pypi",
    "pin PyPI packages (and their closure, for Pyodide) into recipes/pypi.yaml",
    arg("requirements", nargs="*", metavar="REQUIREMENT", help="e.g. 'ipython>=9'"),
    arg(
        "--find-in",
        metavar="REQUIREMENT",
        action="append",
        default=[],
        help="also take wheels shipped inside this PyPI package's data files"
        " (e.g. jupyterlite-pyodide-kernel==0.8.6, which ships the kernel's own wheels)",
    ),
    arg(
        "--recipes",
        type=Path,
        default=Path("recipes"),
        help="the recipes folder (default: recipes)",
    ),
    CACHE_DIR,
    description="Resolve PyPI requirements for Pyodide (markers evaluated for emscripten/wasm32,"
    " Python 3.14), download the wheels and pin them (name, version, sha256) in"
    " recipes/pypi.yaml. `channel build` then converts them into conda packages: pure wheels"
    " into noarch ones; for a project without a pure wheel, its PEP 783 wheel for the runtime's"
    " ABI (pyemscripten_2026_0_wasm32) into an emscripten-wasm32 one. A project with neither is"
    " refused: it needs a compiled recipe. A project that a recipe in recipes/ builds is not"
    " taken from PyPI: the recipe wins.",
)
def cmd_channel_add_pypi(args: argparse.Namespace) -> None:
    added = add_pypi(
        args.recipes, args.requirements, args.find_in, cache_dir=cache_dir(args.cache_dir)
    )
    for line in added.lines():
        stderr.print(line, markup=False)


@command(
    "channel build",
    "build what the channel lacks from recipes/, then index it",
    arg(
        "recipes",
        nargs="?",
        type=Path,
        default=Path("recipes"),
        help="the recipes folder (default: recipes)",
    ),
    CACHE_DIR,
    arg(
        "-o",
        "--output",
        type=Path,
        default=Path("channel"),
        help="the channel folder (default: channel)",
    ),
    description="Build every recipe (recipes/*/recipe.yaml) and every pinned wheel"
    " (recipes/pypi.yaml) that the channel does not hold yet, then index it. A package file"
    " already in the channel is never rebuilt: locks refer to it by sha256.",
)
def cmd_channel_build(args: argparse.Namespace) -> None:
    with stderr.status("building the channel") as status:
        result = build_channel(
            args.recipes,
            args.output,
            cache_dir=cache_dir(args.cache_dir),
            report=lambda message: status.update(_plain(message)),
        )
    for line in result.lines():
        stderr.print(line, markup=False)


@command("channel index", "(re)write the channel's repodata", CHANNEL)
def cmd_channel_index(args: argparse.Namespace) -> None:
    index_channel(_folder(args.channel, "channel"))
    stderr.print(f"indexed {args.channel}")


@command(
    "channel verify",
    "check every package against its paths.json, and that every dependency resolves",
    CHANNEL,
)
def cmd_channel_verify(args: argparse.Namespace) -> None:
    count = verify_channel(_folder(args.channel, "channel"))
    stderr.print(f"{args.channel}: {count} packages verified")


@command(
    "channel toolchain",
    "set up (once) and cache the emscripten toolchain that compiled recipes use",
    arg("--json", action="store_true", help="print the toolchain as JSON"),
    CACHE_DIR,
    description="Set up the toolchain that builds compiled recipes (`extra.toolchain:"
    " emscripten`) for the Pyodide 314 ABI: Debian's emscripten in an mmdebstrap chroot,"
    " CPython 3.14 headers with the runtime's wasm32 pyconfig.h, and a build venv (setuptools,"
    " Cython). Everything comes from Debian's archive, npm and PyPI and is cached under the"
    " cache folder's toolchain/; a second call returns at once. Needs root (chroot, mount"
    " namespace). `channel build` calls this by itself when a recipe needs it.",
)
def cmd_channel_toolchain(args: argparse.Namespace) -> None:
    with stderr.status("setting up the emscripten toolchain") as status:
        toolchain = ensure_toolchain(
            cache_dir(args.cache_dir), report=lambda message: status.update(_plain(message))
        )
    if args.json:
        _print_json(toolchain.to_json())
        return
    for key, value in toolchain.to_json().items():
        stderr.print(f"{key:>11}: {value}")


@command(
    "channel serve",
    "serve the channel over HTTP",
    CHANNEL,
    HOST,
    PORT,
    description="Serve the channel folder over HTTP. Binds 127.0.0.1 unless --host says"
    " otherwise; only files inside the folder are served.",
)
def cmd_channel_serve(args: argparse.Namespace) -> None:
    _serve(_folder(args.channel, "channel"), args, channel=True)


def _serve(
    folder: Path,
    args: argparse.Namespace,
    isolate: bool = False,
    immutable: frozenset[str] = frozenset(),
    channel: bool = False,
) -> None:
    try:
        server = make_server(
            folder,
            host=args.host,
            port=args.port,
            isolate=isolate,
            immutable=immutable,
            channel=channel,
        )
    except OSError as error:
        raise LiteEnvError(f"cannot listen on {args.host}:{args.port}", hint=str(error)) from None
    host, port = server.server_address[:2]
    stderr.print(f"serving {folder} on http://{host}:{port}/ (Ctrl+C stops)")
    with server:
        server.serve_forever()

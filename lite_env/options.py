"""How one build ships an environment: the environment file's `lite-env:` section plus the
command line (or the jupyterlite addon's settings), made once and passed whole."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal, get_args

from lite_env.errors import LiteEnvError

Bytecode = Literal["none", "imported", "all"]
"""Which modules get .pyc compiled by Pyodide: none, those imported at kernel start, or all."""
BYTECODE_MODES: tuple[str, ...] = get_args(Bytecode)

Mode = Literal["image", "lock"]
"""image: lite-env's loader writes the image before Python starts; lock: no loader, Pyodide
installs the archives listed in pyodide-lock.json (slower; site-packages and libraries only)."""
MODES: tuple[str, ...] = get_args(Mode)
#: JupyterLite's apps (jupyterlite-core 0.8.6), each a page of the site.
APPS = ("lab", "notebooks", "tree", "edit", "repl", "consoles")


@dataclass(frozen=True)
class BuildOptions:
    """The options of one build.

    From the environment file's `lite-env:` section:
        bytecode: which modules get .pyc compiled by Pyodide (see Bytecode).
        preload: modules imported (and so compiled) besides the kernel's own.
        exclude: glob patterns of files left out (`site-packages/` stands for the
            interpreter's site-packages; `**` spans folders).
        keep: patterns kept even when a default or `exclude` pattern matches.
        exclude_by_package: patterns left out of one package only.
        lazy: write packages that the kernel's start does not import on their first import
            instead of before Python starts.
        channel_in_site: the site carries the channels the build solved against (and the
            solver, mambajs), so that `%conda install` in the kernel installs from the site.
        apps: the JupyterLite apps the site keeps (lab, notebooks, tree, edit, repl, consoles;
            empty: all), with the shared front-end files only they use.

    From the command line (or the addon's settings) only:
        locked: build exactly the lock; fail if it is out of date.
        snapshot: ship a memory snapshot of the interpreter with the kernel's modules imported.
        mode: see Mode.
        allow_pypi: let `%pip install` in the browser fall back to PyPI.
        contents: notebooks and data to ship in the site.
        precompress: write a gzipped copy beside each site file that shrinks (`name.gz`),
            for servers that send those as they are (lite-env serve, nginx, Caddy); only
            `lite-env build` does (the addon's site may still change after it).
        early_start: the pages of the apps that start a kernel start the default kernel's
            worker as they load, so Python boots while the front end does
            (lite_env.early_start; image mode only).
    """

    bytecode: Bytecode = "imported"
    preload: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    exclude_by_package: tuple[tuple[str, tuple[str, ...]], ...] = ()
    lazy: bool = True
    channel_in_site: bool = False
    locked: bool = False
    snapshot: bool = False
    mode: Mode = "image"
    allow_pypi: bool = False
    contents: tuple[Path, ...] = ()
    precompress: bool = True
    early_start: bool = True
    apps: tuple[str, ...] = ()

    def override(self, **values: object) -> BuildOptions:
        """These options with the given values in place of theirs; None keeps a value.

        Raises LiteEnvError for a bytecode or mode that does not exist.
        """
        given = {name: value for name, value in values.items() if value is not None}
        unknown = sorted(set(given) - {f.name for f in fields(self)})
        if unknown:
            raise LiteEnvError(f"unknown build option {unknown[0]!r}")
        for name, allowed in (("bytecode", BYTECODE_MODES), ("mode", MODES)):
            if name in given and given[name] not in allowed:
                raise LiteEnvError(f"`{name}` is one of {', '.join(allowed)}, not {given[name]!r}")
        if "contents" in given:
            given["contents"] = tuple(Path(path) for path in given["contents"])
        if "apps" in given:
            unknown_apps = sorted(set(given["apps"]) - set(APPS))
            if unknown_apps:
                raise LiteEnvError(
                    f"no JupyterLite app {unknown_apps[0]!r}", hint=f"apps: {', '.join(APPS)}"
                )
            given["apps"] = tuple(given["apps"])
        return replace(self, **given)

    @property
    def shipped_snapshot(self) -> bool:
        """Whether the build makes a memory snapshot (only the loader can restore one)."""
        return self.snapshot and self.mode == "image"

"""`%conda install` / `%conda list` (and `%mamba`) in the kernel, from the site's own channel.

Shipped by a site built with `--channel-in-site` as the module `_lite_env_conda` (lite_env's
conda.mjs writes it into site-packages with the lite_env modules it imports). mambajs solves
against the installed set; each new package is fetched from the site's channel, its sha256
checked against the channel's record and its archive checked by lite_env.verify (the build's
own check) before anything is written; then it is unpacked into the prefix `/`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import shlex
import shutil
import sysconfig
import tempfile
from pathlib import Path

#: Lines the kernel runs as `%conda`: `%conda ...` or `%mamba ...`, alone on their line.
MAGIC = re.compile(r"^(\s*)%(?:conda|mamba)\b(.*)$")
#: What a solved package may be: a plain archive name in a subdir of this platform, and names,
#: versions and builds of conda's characters (a hostile channel's repodata chooses them: never
#: a path, never a line of an exported file).
PACKAGE_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*\.(conda|tar\.bz2)")
SUBDIRS = ("emscripten-wasm32", "noarch")
FIELD = re.compile(r"[A-Za-z0-9_.+!*-]+")
#: Where conda's noarch python paths go in the prefix `/`.
PREFIX = Path("/")
USAGE = (
    "usage: %conda install NAME[=VERSION] ... | %conda list"
    " | %conda env export [--from-history] [-f FILE]"
)

_state: dict = {}


class CondaError(Exception):
    """A request `%conda` refuses; its message is printed, never a traceback."""


def hook() -> None:
    """Make every IPython shell made from now on (the kernel's) run `%conda` lines."""
    from IPython.core.interactiveshell import InteractiveShell

    original = InteractiveShell.init_magics

    def init_magics(shell: InteractiveShell) -> None:
        original(shell)
        shell.input_transformers_cleanup.append(transform)

    InteractiveShell.init_magics = init_magics


def transform(lines: list[str]) -> list[str]:
    """Rewrite `%conda ARGS` lines as an awaited call of `magic` (cells run with top-level
    await in the kernel)."""
    out = []
    for line in lines:
        match = MAGIC.match(line)
        if match:
            line = f"{match[1]}await __import__('_lite_env_conda').magic({match[2].strip()!r})\n"
        out.append(line)
    return out


async def magic(line: str) -> None:
    """Run one `%conda` command; a refused request prints its one-line reason."""
    try:
        arguments = shlex.split(line)
        if arguments[:1] == ["install"] and len(arguments) > 1:
            await install(arguments[1:])
        elif arguments == ["list"]:
            for row in await listing():
                print(row)
        elif arguments[:2] == ["env", "export"]:
            await export(arguments[2:])
        else:
            raise CondaError(USAGE)
    except (CondaError, ValueError) as error:
        print(f"%conda: {error}")
    except Exception as error:  # a JavaScript error from the solver or a fetch
        print(f"%conda: {getattr(error, 'message', None) or error}")


async def listing() -> list[str]:
    """The installed packages, one line each: name, version, build, where it came from."""
    installed = await _installed()
    return [
        f"{p['name']:<28} {p['version']:<14} {p['build']:<24} {p.get('origin', 'site')}"
        for p in sorted(installed.values(), key=lambda p: p["name"])
    ]


async def export(arguments: list[str]) -> None:
    """Print (or with `-f FILE`, write) the environment as an environment.yml, as `conda env
    export` does: every installed package pinned `name=version=build`, the ones this session
    added marked; `--from-history`: only the requests of this session's `%conda install`, the
    lines a teacher adds to the course's environment.yml."""
    history = "--from-history" in arguments
    rest = [a for a in arguments if a != "--from-history"]
    if len(rest) not in (0, 2) or rest[:1] not in ([], ["-f"]):
        raise CondaError(USAGE)
    text = environment_yml(await _installed(), _state.get("requested", []), history)
    if rest:
        Path(rest[1]).write_text(text)
        print(f"%conda: wrote {rest[1]}")
    else:
        print(text, end="")


def environment_yml(installed: dict, requested: list[str], from_history: bool) -> str:
    """The environment.yml text of `export`."""
    import _lite_env_conda_js as js

    lines = ["channels:", f"  - {js.channel}", "dependencies:"]
    if from_history:
        lines += [f"  - {spec}" for spec in requested]
    else:
        for p in sorted(installed.values(), key=lambda p: p["name"]):
            if not all(FIELD.fullmatch(str(p[key])) for key in ("name", "version", "build")):
                raise CondaError(f"{p['file']!r} has a name, version or build unfit to export")
            added = "  # added in this session" if p.get("origin") == "this session" else ""
            lines.append(f"  - {p['name']}={p['version']}={p['build']}{added}")
    return "\n".join(lines) + "\n"


async def install(specs: list[str]) -> None:
    """Solve `specs` with the installed set, then fetch, check and write the new packages.

    Installed packages stay as they are: a request the solver can meet only by changing one
    is refused with the changes named. Nothing is written unless every new package passed.
    """
    import _lite_env_conda_js as js

    installed = await _installed()
    specs = [_conda_spec(spec) for spec in specs]
    solved = json.loads(await js.solve(json.dumps(specs), json.dumps(list(installed.values()))))
    by_name = {p["name"]: (file, p) for file, p in solved.items()}
    _refuse_changes(installed, by_name)
    new = sorted(file for file in solved if file not in installed)
    for file in new:
        _check_solved(file, solved[file])
    if not new:
        print(f"%conda: already installed: {', '.join(specs)}")
        return
    records = await _records({solved[file]["subdir"] for file in new})
    scratch = Path(tempfile.mkdtemp(prefix="lite-env-conda-"))
    try:
        checked = []
        for file in new:
            record = records.get((solved[file]["subdir"], file))
            if record is None:
                raise CondaError(f"{file} is not in the site's channel")
            data = (await js.fetchBytes(f"{solved[file]['subdir']}/{file}")).to_py()
            checked.append(_check(scratch / file, bytes(data), record))
        plans = [_plan(path) for path in checked]
        written = [target for plan in plans for target in _write(plan)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    importlib.invalidate_caches()
    for file in new:
        installed[file] = {**_entry(file, solved[file]), "origin": "this session"}
    requested = _state.setdefault("requested", [])
    requested += [spec for spec in specs if spec not in requested]
    names = ", ".join(f"{solved[f]['name']} {solved[f]['version']}" for f in new)
    print(f"%conda: installed {names} ({len(written)} files)")


def _check_solved(file: str, package: dict) -> None:
    """Refuse a solved package whose file name, subdir, name, version or build is not plain."""
    fields = [package.get(key) for key in ("name", "version", "build")]
    plain = all(isinstance(v, str) and FIELD.fullmatch(v) for v in fields)
    if not (PACKAGE_FILE.fullmatch(file) and package.get("subdir") in SUBDIRS and plain):
        raise CondaError(f"the channel offers a package named {file!r}: refused")


def _conda_spec(spec: str) -> str:
    """NAME=VERSION as conda's command line means it (VERSION.*), else the MatchSpec as given."""
    if re.fullmatch(r"[A-Za-z0-9_.\-]+=[^=<>!~ ]+", spec):
        name, version = spec.split("=")
        return f"{name} {version}.*" if not version.endswith("*") else f"{name} {version}"
    return spec


def _refuse_changes(installed: dict, by_name: dict) -> None:
    changes = []
    for file, package in installed.items():
        now = by_name.get(package["name"])
        if now is None or now[0] != file:
            after = f"{now[1]['version']} {now[1]['build']}" if now else "removed"
            changes.append((package["name"], f"{package['version']} {package['build']}", after))
    if not changes:
        return
    abi = [c for c in changes if c[0] == "pyodide-abi"]
    if abi:
        raise CondaError(
            f"the request needs packages built for pyodide-abi {abi[0][2].split()[0]}; this"
            f" runtime is pyodide-abi {abi[0][1].split()[0]}"
        )
    named = "; ".join(f"{name} {before} -> {after}" for name, before, after in changes)
    raise CondaError(
        f"the request would change installed packages ({named}): %conda install adds"
        " packages and keeps the site's environment as it is; change environment.yml instead"
    )


def _check(path: Path, data: bytes, record: dict) -> Path:
    """Write the fetched bytes to a scratch file once their sha256 is the record's, and check
    the archive as the build does (lite_env.verify)."""
    from lite_env.verify import verify_package

    digest = hashlib.sha256(data).hexdigest()
    if digest != record.get("sha256"):
        raise CondaError(
            f"{path.name}: its bytes do not match the channel's record (sha256 {digest},"
            f" expected {record.get('sha256')}); nothing was installed"
        )
    path.write_bytes(data)
    problems = verify_package(path)
    if problems:
        raise CondaError(f"{path.name} refused: {problems[0]}; nothing was installed")
    return path


def _plan(path: Path) -> tuple[Path, list[tuple[str, Path]]]:
    """Each payload member of a checked package and where it goes; refuses a member that
    would replace a file already there or be written through a symbolic link."""
    from lite_env.archive import canonical_members

    site_packages = Path(sysconfig.get_path("purelib"))
    noarch_python = False
    targets = []
    for tar, member in canonical_members(path):
        if member.name == "info/index.json":
            noarch_python = json.load(tar.extractfile(member)).get("noarch") == "python"
        if member.name.startswith("info/") or member.isdir():
            continue
        top, _, rest = member.name.partition("/")
        if noarch_python and top == "site-packages":
            target = site_packages / rest
        elif noarch_python and top == "python-scripts":
            target = PREFIX / "bin" / rest
        else:
            target = PREFIX / member.name
        if os.path.lexists(target):
            raise CondaError(f"{path.name} refused: {target} exists already; nothing was installed")
        if any(parent.is_symlink() for parent in target.parents):
            raise CondaError(f"{path.name} refused: {target} is under a symbolic link")
        targets.append((member.name, target))
    return path, targets


def _write(plan: tuple[Path, list[tuple[str, Path]]]) -> list[Path]:
    """Unpack the planned members (the archive read again, as checked), and make its shared
    libraries findable by name on the runtime's library path (/usr/lib), as the loader does."""
    from lite_env.archive import canonical_members

    path, targets = plan
    where = dict(targets)
    written = []
    for tar, member in canonical_members(path):
        target = where.get(member.name)
        if target is None:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if member.issym():
            target.symlink_to(member.linkname)
        else:
            target.write_bytes(tar.extractfile(member).read())
            target.chmod(0o755 if member.mode & 0o111 else 0o644)
        written.append(target)
        if member.name.startswith("lib/") and ".so" in target.name:
            link = Path("/usr/lib") / target.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not os.path.lexists(link):
                link.symlink_to(target)
    return written


async def _installed() -> dict:
    """The installed set by file name: the site's (the lock's records), then this session's."""
    if "installed" not in _state:
        import _lite_env_conda_js as js

        document = json.loads(bytes((await js.fetchInstalled()).to_py()))
        _state["installed"] = {p["file"]: p for p in document}
    return _state["installed"]


async def _records(subdirs: set[str]) -> dict:
    """The channel's records of the given subdirs, by (subdir, file name)."""
    import _lite_env_conda_js as js

    records = {}
    for subdir in sorted(subdirs):
        document = json.loads(bytes((await js.fetchBytes(f"{subdir}/repodata.json")).to_py()))
        for key in ("packages", "packages.conda"):
            for file, record in (document.get(key) or {}).items():
                records[(subdir, file)] = record
    return records


def _entry(file: str, solved: dict) -> dict:
    keys = ("name", "version", "build", "subdir")
    return {"file": file, **{key: solved[key] for key in keys}}

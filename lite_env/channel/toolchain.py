"""The emscripten toolchain that compiles recipes for the Pyodide 314 runtime, built and cached.

It is assembled from Debian's archive and PyPI only, under `cache_dir/toolchain/`:

    chroot/    Debian trixie made by mmdebstrap: emscripten 3.1.69 (clang 19), python3, make;
               a build venv at /opt/lite-env/venv (setuptools, wheel, build, Cython, pip,
               setuptools-scm, cppy);
               its C++ headers replaced by the runtime's libc++ 21 headers (libcxx.py)
    python/    include/python3.14/ (CPython 3.14 headers from Debian's libpython3.14-dev, with a
               pyconfig.h rebuilt for wasm32 from the runtime's sysconfigdata) and sysconfig/
               (the runtime's `_sysconfigdata__emscripten_wasm32-emscripten.py`, its compiler
               and paths pointed at this toolchain: setuptools cross-compiles with it)
    bin/       wrappers a recipe's build script calls: emcc, em++, emar, emranlib, emconfigure,
               emmake, python (the build venv with the wasm32 sysconfig) and chroot-run
    cxx-check/ the runtime the C++ layout check (cxx_check.py) loads its probe into
    stamp.json what was built: Debian package versions, headers, libc++ headers, runtime,
               wheels, the C++ layout the check found

The wrappers run their command in the chroot inside a private mount namespace, with the host
folders the build works in (its current folder, $SRC_DIR, $PREFIX, $BUILD_PREFIX, $TMPDIR,
this toolchain, $LITE_ENV_CHROOT_BINDS) bound at the same paths, so a path means the same file
inside and out. That needs root (mmdebstrap, chroot, mount). Each part is built once; a second
`ensure_toolchain` only reads the stamps.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lite_env.errors import LiteEnvError
from lite_env.files import write_atomically

#: Bumped when the layout or the way a part is made changes: every part is then rebuilt.
FORMAT = 2
#: The Debian release of the chroot. Its emscripten 3.1.69 is the oldest that matches Pyodide
#: 314's ABI (wasm setjmp/longjmp, 64-bit time_t); bookworm's 3.1.6 is too old.
SUITE = "trixie"
CHROOT_PACKAGES = ("emscripten", "python3-venv", "make")
#: dpkg filters: docs and emscripten's LTO libraries (850 MB) are never used here. (Its test/
#: folder holds Python files that python3's postinst byte-compiles: it must stay.)
CHROOT_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/locale/*",
    "/usr/share/emscripten/cache/sysroot/lib/wasm32-emscripten/lto*",
)
#: Where the CPython 3.14 headers come from (Debian suites tried in order).
HEADERS_PACKAGE = "libpython3.14-dev"
HEADERS_SUITES = ("sid",)
PYTHON_VERSION = "3.14"
#: The build venv (Python 3.13 in the chroot): PEP 517 front ends, setuptools, Cython, and
#: the build requirements of C++ sdists: setuptools-scm (versions) and cppy (kiwisolver).
BUILD_REQUIREMENTS = (
    "setuptools==84.2.1",
    "wheel==0.48.0",
    "build==1.6.1",
    "cython==3.3.1",
    "setuptools-scm==10.3.4",
    "cppy==1.3.1",
)
#: The runtime whose sysconfigdata configures the headers and setuptools: the npm tarball the
#: pyodide-python recipe packages (same pin).
RUNTIME_SPEC = "pyodide@314.0.7"
RUNTIME_FILE = "pyodide-314.0.7.tgz"
RUNTIME_SHA256 = "66b7949e5a0cba2250b586d7e368bf12fb482800748d182c4618254b685ffaa0"
SYSCONFIGDATA = "_sysconfigdata__emscripten_wasm32-emscripten"
#: Flags of a Pyodide side module (the runtime is built with wasm exceptions and wasm SjLj).
CFLAGS = "-O2 -g0 -fPIC -DNDEBUG -fwasm-exceptions -sSUPPORT_LONGJMP=wasm"
LDFLAGS = "-O2 -g0 -sSIDE_MODULE=1 -sWASM_BIGINT -fwasm-exceptions -sSUPPORT_LONGJMP=wasm"
#: The build venv's path inside the chroot.
VENV = "/opt/lite-env/venv"
TOOLS = ("emcc", "em++", "emar", "emranlib", "emconfigure", "emmake", "emcmake")
#: Debian release names: a host apt source naming one of them is a Debian mirror.
DEBIAN_SUITES = frozenset(
    "buzz rex bo hamm slink potato woody sarge etch lenny squeeze wheezy jessie stretch buster"
    " bullseye bookworm trixie forky duke sid stable testing unstable oldstable".split()
)
MIRROR_VARIABLE = "LITE_ENV_DEBIAN_MIRROR"
#: Seconds a download or mmdebstrap may take.
TIMEOUT = 1800


@dataclass(frozen=True)
class Toolchain:
    """A ready emscripten toolchain for Pyodide 314 side modules and extension modules.

    Attributes:
        folder: `cache_dir/toolchain`.
        chroot: the Debian chroot holding emcc and the build venv.
        bin: the wrappers (emcc, em++, emar, emranlib, emconfigure, emmake, emcmake, python,
            chroot-run).
        include: the CPython headers configured for wasm32 (`.../include/python3.14`).
        sysconfig: the folder of the cross `_sysconfigdata__emscripten_wasm32-emscripten.py`.
        emscripten: the Debian version of emscripten in the chroot.
        headers: the Debian package and version the headers come from.
        libcxx: the Debian package and version the C++ (libc++) headers come from.
        platform: the runtime's platform (`emscripten_5_0_3`).
        abi: the runtime's Pyodide ABI (`2026_0`).
        ext_suffix: extension module suffix (`.cpython-314-wasm32-emscripten.so`).
    """

    folder: Path
    chroot: Path
    bin: Path
    include: Path
    sysconfig: Path
    emscripten: str
    headers: str
    platform: str
    abi: str
    ext_suffix: str
    libcxx: str = ""

    @property
    def wheel_platform(self) -> str:
        """The platform tag of wheels for this runtime (`pyemscripten_2026_0_wasm32`)."""
        return f"pyemscripten_{self.abi}_wasm32"

    def env(self) -> dict[str, str]:
        """The variables a recipe's build script gets.

        EMCC/CC, EMXX/CXX, AR, RANLIB, EMCONFIGURE, EMMAKE: the wrappers; CFLAGS/CXXFLAGS and
        LDFLAGS: side-module flags (link a shared library with `$EMCC $LDFLAGS`);
        LITE_ENV_PYTHON: Python 3.13 with the BUILD_REQUIREMENTS and pip, cross-configured
        for the runtime (`$LITE_ENV_PYTHON -m pip install . --no-build-isolation --no-deps
        --no-compile --target "$PREFIX/lib/python3.14/site-packages"` builds an unpacked sdist
        and installs it with its extension modules); the venv's bin/ (cython, ...) is on the
        chroot's PATH;
        LITE_ENV_PYTHON_INCLUDE, LITE_ENV_EXT_SUFFIX, LITE_ENV_WHEEL_PLATFORM;
        LITE_ENV_CHROOT_RUN: runs any command in the chroot; LITE_ENV_TOOLCHAIN: the folder.
        """
        tool = {name: str(self.bin / name) for name in (*TOOLS, "python", "chroot-run")}
        return {
            "LITE_ENV_TOOLCHAIN": str(self.folder),
            "LITE_ENV_CHROOT_RUN": tool["chroot-run"],
            "LITE_ENV_PYTHON": tool["python"],
            "LITE_ENV_PYTHON_INCLUDE": str(self.include),
            "LITE_ENV_EXT_SUFFIX": self.ext_suffix,
            "LITE_ENV_WHEEL_PLATFORM": self.wheel_platform,
            "EMCC": tool["emcc"],
            "EMXX": tool["em++"],
            "EMCONFIGURE": tool["emconfigure"],
            "EMMAKE": tool["emmake"],
            "CC": tool["emcc"],
            "CXX": tool["em++"],
            "AR": tool["emar"],
            "RANLIB": tool["emranlib"],
            "CFLAGS": CFLAGS,
            "CXXFLAGS": CFLAGS,
            "LDFLAGS": LDFLAGS,
        }


def ensure_toolchain(
    cache_dir: Path, *, report: Callable[[str], None] = lambda message: None
) -> Toolchain:
    """Return the toolchain under `cache_dir/toolchain/`, building the parts it lacks.

    A cold build takes a few minutes (mmdebstrap downloads and unpacks ~1.5 GB of Debian
    packages) and needs root; a warm call reads the stamps and returns in milliseconds.
    `report` gets one line per part built. Raises LiteEnvError when a part cannot be fetched
    or built (no Debian mirror in the host's apt sources, mmdebstrap missing and not
    installable, pip or apt failing...).
    """
    from lite_env.channel.cxx_check import check_cxx_layout
    from lite_env.channel.libcxx import ensure_libcxx

    folder = cache_dir.absolute() / "toolchain"
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        chroot = _ensure_chroot(folder, report)
        libcxx = ensure_libcxx(folder, chroot, report)
        runtime = _ensure_runtime(folder, cache_dir.absolute(), report)
        headers = _ensure_headers(folder, runtime, report)
        toolchain = Toolchain(
            folder=folder,
            chroot=folder / "chroot",
            bin=folder / "bin",
            include=folder / "python" / "include" / f"python{PYTHON_VERSION}",
            sysconfig=folder / "python" / "sysconfig",
            emscripten=chroot["emscripten"],
            headers=f"{HEADERS_PACKAGE} {headers['version']}",
            platform=runtime["platform"],
            abi=runtime["abi"],
            ext_suffix=runtime["ext_suffix"],
            libcxx=libcxx["wanted"]["package"],
        )
        _write_wrappers(toolchain, runtime)
        venv = _ensure_venv(folder, chroot, report)
        cxx = check_cxx_layout(
            folder,
            toolchain.bin / "em++",
            lambda: _runtime_tarball(cache_dir.absolute()),
            flags=f"{CFLAGS} {LDFLAGS}",
            inputs={"chroot": chroot["packages"], "libcxx": libcxx, "runtime": runtime["wanted"]},
            report=report,
        )
        stamp = {
            "format": FORMAT,
            "suite": SUITE,
            "emscripten": toolchain.emscripten,
            "packages": chroot["packages"],
            "headers": headers,
            "libcxx": libcxx,
            "cxx_layout": cxx["layout"],
            "runtime": runtime,
            "wheels": venv["wheels"],
            "cflags": CFLAGS,
            "ldflags": LDFLAGS,
        }
        if _read_json(folder / "stamp.json") != stamp:
            _write_json(folder / "stamp.json", stamp)
    return toolchain


def debian_mirror(etc: Path = Path("/etc/apt")) -> str:
    """The Debian mirror the host's apt uses (or $LITE_ENV_DEBIAN_MIRROR), e.g. `http://…/debian`.

    Read from `etc`'s sources.list and sources.list.d/*.list|*.sources: the first `deb`
    source of a Debian release (security and other archives are skipped).
    """
    if os.environ.get(MIRROR_VARIABLE):
        return os.environ[MIRROR_VARIABLE].rstrip("/")
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file() or path.suffix not in (".list", ".sources"):
            continue
        text = path.read_text(errors="replace")
        entries = _deb822_entries(text) if path.suffix == ".sources" else _one_line_entries(text)
        for types, uris, suites in entries:
            if "deb" in types and any(suite in DEBIAN_SUITES for suite in suites):
                return uris[0].rstrip("/")
    raise LiteEnvError(
        f"cannot find a Debian mirror in the host's apt sources ({etc}/sources.list*)",
        hint=f"the emscripten toolchain is built from Debian packages: set {MIRROR_VARIABLE}"
        " to a Debian mirror URL, or build on a Debian host",
    )


class AptArchive:
    """apt-get with a private configuration (sources, lists and downloads in `folder`).

    The host's own sources and package state are never touched: used to download a package
    (`download`) or a source tarball (`source`) from another Debian release than the host's.
    """

    def __init__(self, folder: Path, suites: Sequence[str], *, sources: bool = False) -> None:
        self.folder = folder
        self.suites = tuple(suites)
        self.sources = sources
        self._updated = False

    def options(self) -> list[str]:
        lists, etc = self.folder / "lists", self.folder / "etc"
        return [
            f"-oDir::Etc::SourceList={etc / 'sources.list'}",
            f"-oDir::Etc::SourceParts={etc / 'sources.list.d'}",
            f"-oDir::Etc::Preferences={etc / 'preferences'}",
            f"-oDir::Etc::PreferencesParts={etc / 'preferences.d'}",
            f"-oDir::State::Lists={lists}",
            f"-oDir::State::status={etc / 'status'}",
            f"-oDir::Cache={self.folder / 'cache'}",
            "-oAcquire::Check-Valid-Until=false",
            "-oAcquire::Languages=none",
            "-oAPT::Sandbox::User=root",
            "-oDebug::NoLocking=true",
        ]

    def update(self) -> None:
        """Write the sources list and run `apt-get update` (once per instance)."""
        if self._updated:
            return
        mirror = debian_mirror()
        etc = self.folder / "etc"
        for path in (etc / "sources.list.d", etc / "preferences.d", self.folder / "lists"):
            (path / "partial" if path.name == "lists" else path).mkdir(parents=True, exist_ok=True)
        (self.folder / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        kind = "deb-src" if self.sources else "deb"
        lines = [f"{kind} {mirror} {suite} main\n" for suite in self.suites]
        (etc / "sources.list").write_text("".join(lines))
        (etc / "status").touch()
        self._run(["update"], what=f"apt-get update for Debian {', '.join(self.suites)}")
        self._updated = True

    def download(self, package: str, folder: Path) -> Path:
        """`apt-get download package` into folder; returns the .deb."""
        self.update()
        before = set(folder.glob("*.deb"))
        self._run(["download", package], cwd=folder, what=f"apt-get download {package}")
        (deb,) = set(folder.glob("*.deb")) - before
        return deb

    def source(self, package: str, version: str, folder: Path) -> None:
        """`apt-get source --download-only package=version` into folder (.dsc and tarballs)."""
        self.update()
        self._run(
            ["source", "--download-only", f"{package}={version}"],
            cwd=folder,
            what=f"apt-get source {package}={version}",
        )

    def _run(self, arguments: list[str], *, what: str, cwd: Path | None = None) -> None:
        apt_get = shutil.which("apt-get")
        if apt_get is None:
            raise LiteEnvError(
                f"cannot run {what}: apt-get is not installed",
                hint="the emscripten toolchain is built from Debian packages: use a Debian host",
            )
        command = [apt_get, "-q", *self.options(), *arguments]
        done = _run(command, what=what, cwd=cwd)
        if done.returncode != 0:
            raise LiteEnvError(
                f"{what} failed", hint=_tail(done.stdout + done.stderr) or "no output"
            )


def wasm_pyconfig(debian_pyconfig: str, build_time_vars: Mapping[str, object]) -> str:
    """Rewrite a Debian pyconfig.h with the values of the runtime's sysconfigdata.

    Every line `#define NAME value` or `/* #undef NAME */` that sysconfig parses (NAME starts
    with a capital letter) takes the runtime's value: sysconfig stores each define of the
    runtime's own pyconfig.h, and an #undef as 0. A macro the runtime does not know (newer
    than its patch level) becomes undefined; other lines stay as they are.
    """
    define = re.compile(r"#define ([A-Z][A-Za-z0-9_]+) (.*)$")
    undef = re.compile(r"/[*] #undef ([A-Z][A-Za-z0-9_]+) [*]/$")
    lines = [
        "/* pyconfig.h for CPython on wasm32-emscripten (Pyodide): Debian's header, each value",
        f"   taken from the runtime's {SYSCONFIGDATA}.py by lite-env. */",
    ]
    for line in debian_pyconfig.splitlines():
        match = define.match(line) or undef.match(line)
        if match:
            name = match[1]
            value = build_time_vars.get(name, 0)
            line = f"/* #undef {name} */" if value == 0 else f"#define {name} {value}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def cross_sysconfigdata(source: str, toolchain: Toolchain) -> str:
    """The runtime's sysconfigdata module with its compiler, linker and paths set for emcc
    (the toolchain's wrappers, which work inside the chroot and out).

    CFLAGS (Pyodide's own, with -DPY_CALL_TRAMPOLINE) and EXT_SUFFIX stay the runtime's.
    """
    namespace: dict[str, object] = {}
    exec(compile(source, SYSCONFIGDATA, "exec"), namespace)
    variables = dict(namespace["build_time_vars"])  # type: ignore[arg-type]
    include = str(toolchain.include)
    emcc, emxx = toolchain.bin / "emcc", toolchain.bin / "em++"
    variables.update(
        CC=str(emcc),
        CXX=str(emxx),
        AR=str(toolchain.bin / "emar"),
        LDSHARED=f"{emcc} {LDFLAGS}",
        LDCXXSHARED=f"{emxx} {LDFLAGS}",
        BLDSHARED=f"{emcc} {LDFLAGS}",
        CCSHARED="-fPIC",
        LDFLAGS="",
        INCLUDEPY=include,
        CONFINCLUDEPY=include,
        INCLUDEDIR=str(toolchain.include.parent),
    )
    return (
        "# The Pyodide runtime's sysconfigdata, with the compiler set for lite-env's emscripten"
        " toolchain.\nbuild_time_vars = " + json.dumps(variables, indent=1, sort_keys=True) + "\n"
    )


def _ensure_chroot(folder: Path, report: Callable[[str], None]) -> dict:
    chroot = folder / "chroot"
    wanted = {
        "format": FORMAT,
        "suite": SUITE,
        "packages": list(CHROOT_PACKAGES),
        "excludes": list(CHROOT_EXCLUDES),
    }
    stamp = _read_json(folder / "chroot.json")
    if stamp and stamp.get("wanted") == wanted and (chroot / "usr/bin/emcc").exists():
        return stamp
    _require_root("building the emscripten chroot")
    report(f"building a Debian {SUITE} chroot with {', '.join(CHROOT_PACKAGES)} (mmdebstrap)")
    mmdebstrap = _ensure_mmdebstrap()
    mirror = debian_mirror()
    partial = folder / "chroot.partial"
    _remove(partial)
    _remove(chroot)
    (folder / "chroot.json").unlink(missing_ok=True)
    command = [
        mmdebstrap,
        "--variant=apt",
        "--mode=root",
        "--aptopt=Acquire::Check-Valid-Until false",
        *(f"--dpkgopt=path-exclude={pattern}" for pattern in CHROOT_EXCLUDES),
        f"--include={','.join(CHROOT_PACKAGES)}",
        SUITE,
        str(partial),
        f"deb {mirror} {SUITE} main",
    ]
    done = _run(command, what="mmdebstrap")
    if done.returncode != 0:
        _remove(partial)
        raise LiteEnvError(
            f"mmdebstrap could not build the Debian {SUITE} chroot for emscripten",
            hint=_tail(done.stdout + done.stderr) or f"mmdebstrap exited with {done.returncode}",
        )
    versions = subprocess.run(
        ["chroot", str(partial), "dpkg-query", "-W", "-f", "${Package} ${Version}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    packages = dict(line.split(" ", 1) for line in versions.splitlines() if " " in line)
    os.replace(partial, chroot)
    stamp = {
        "wanted": wanted,
        "emscripten": packages.get("emscripten", "?"),
        "packages": {
            name: packages[name]
            for name in ("emscripten", "clang-19", "binaryen", "nodejs", "python3")
            if name in packages
        },
    }
    _write_json(folder / "chroot.json", stamp)
    return stamp


def _ensure_runtime(folder: Path, cache_dir: Path, report: Callable[[str], None]) -> dict:
    """Extract the runtime's sysconfigdata and lock info from the pinned npm tarball."""
    target = folder / "runtime"
    wanted = {"format": FORMAT, "spec": RUNTIME_SPEC, "sha256": RUNTIME_SHA256}
    stamp = _read_json(target / "runtime.json")
    if stamp and stamp.get("wanted") == wanted and (target / f"{SYSCONFIGDATA}.py").is_file():
        return stamp
    report(f"reading the runtime's sysconfigdata from {RUNTIME_SPEC}")
    with tarfile.open(_runtime_tarball(cache_dir)) as archive:
        stdlib = archive.extractfile("package/python_stdlib.zip").read()  # type: ignore[union-attr]
        lock = json.load(archive.extractfile("package/pyodide-lock.json"))  # type: ignore[arg-type]
    with zipfile.ZipFile(io.BytesIO(stdlib)) as stdlib_zip:
        source = stdlib_zip.read(f"{SYSCONFIGDATA}.py").decode()
    namespace: dict[str, dict] = {}
    exec(compile(source, SYSCONFIGDATA, "exec"), namespace)
    variables = namespace["build_time_vars"]
    info = lock["info"]
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{SYSCONFIGDATA}.py").write_text(source)
    stamp = {
        "wanted": wanted,
        "python": info["python"],
        "platform": info["platform"],
        "abi": info["abi_version"],
        "ext_suffix": variables["EXT_SUFFIX"],
        "sysconfigdata_sha256": hashlib.sha256(source.encode()).hexdigest(),
    }
    _write_json(target / "runtime.json", stamp)
    return stamp


def _runtime_tarball(cache_dir: Path) -> Path:
    """The runtime's npm tarball in the cache (fetched and checked first when needed)."""
    from lite_env.channel.recipes import NpmSource, fetch_npm_source

    return fetch_npm_source(
        NpmSource(RUNTIME_SPEC, RUNTIME_FILE, RUNTIME_SHA256), cache_dir=cache_dir
    )


def _ensure_headers(folder: Path, runtime: dict, report: Callable[[str], None]) -> dict:
    """CPython headers from Debian's libpython3.X-dev, with the runtime's pyconfig.h values."""
    target = folder / "python"
    wanted = {
        "format": FORMAT,
        "package": HEADERS_PACKAGE,
        "suites": list(HEADERS_SUITES),
        "sysconfigdata_sha256": runtime["sysconfigdata_sha256"],
    }
    stamp = _read_json(target / "headers.json")
    include = target / "include" / f"python{PYTHON_VERSION}"
    if stamp and stamp.get("wanted") == wanted and (include / "Python.h").is_file():
        return stamp
    report(f"fetching CPython headers ({HEADERS_PACKAGE} from Debian {HEADERS_SUITES[0]})")
    archive = AptArchive(folder / "apt" / "headers", HEADERS_SUITES)
    with tempfile.TemporaryDirectory(prefix="headers-", dir=folder) as scratch:
        scratch_path = Path(scratch)
        deb = archive.download(HEADERS_PACKAGE, scratch_path)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(scratch_path / "x")], check=True)
        usr_include = scratch_path / "x" / "usr" / "include"
        arch_config = sorted(usr_include.glob(f"*/python{PYTHON_VERSION}/pyconfig.h"))
        if not (usr_include / f"python{PYTHON_VERSION}" / "Python.h").is_file() or not arch_config:
            raise LiteEnvError(
                f"{deb.name} holds no CPython headers (include/python{PYTHON_VERSION})",
                hint="the Debian package's layout changed; lite-env needs an update",
            )
        namespace: dict[str, dict] = {}
        source = (folder / "runtime" / f"{SYSCONFIGDATA}.py").read_text()
        exec(compile(source, SYSCONFIGDATA, "exec"), namespace)
        pyconfig = wasm_pyconfig(arch_config[0].read_text(), namespace["build_time_vars"])
        _remove(target / "include")
        shutil.copytree(usr_include / f"python{PYTHON_VERSION}", include, symlinks=False)
        (include / "pyconfig.h").write_text(pyconfig)
        version = deb.name.split("_")[1]
    stamp = {
        "wanted": wanted,
        "version": version,
        "pyconfig_sha256": hashlib.sha256(pyconfig.encode()).hexdigest(),
    }
    _write_json(target / "headers.json", stamp)
    return stamp


def _ensure_venv(folder: Path, chroot: dict, report: Callable[[str], None]) -> dict:
    """The build venv in the chroot, from wheels the host's pip downloads (pinned versions)."""
    return ensure_venv(
        folder,
        VENV,
        BUILD_REQUIREMENTS,
        chroot=chroot,
        wheels=folder / "wheels",
        stamp_path=folder / "venv.json",
        pip_options=("--implementation", "py", "--platform", "any"),
        report=report,
    )


def ensure_venv(
    folder: Path,
    venv: str,
    requirements: Sequence[str],
    *,
    chroot: dict,
    wheels: Path,
    stamp_path: Path,
    pip_options: Sequence[str],
    report: Callable[[str], None],
) -> dict:
    """A venv at `venv` in the chroot of the toolchain `folder`, with the pinned
    `requirements` installed from the wheels the host's pip downloads into `wheels`
    (`pip_options` select the wheels' platform); `stamp_path` records what was installed."""
    wanted = {
        "format": FORMAT,
        "requirements": list(requirements),
        "chroot": chroot["packages"],
    }
    stamp = _read_json(stamp_path)
    python = folder / "chroot" / venv.lstrip("/") / "bin" / "python"
    if stamp and stamp.get("wanted") == wanted and python.exists():
        return stamp
    report(f"making the build venv {venv} ({', '.join(requirements)})")
    _remove(wheels)
    wheels.mkdir(parents=True)
    command = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
        "--only-binary=:all:", *pip_options,
        "--python-version", "3.13", "--dest", str(wheels), *requirements,
    ]  # fmt: skip
    done = _run(command, what="pip download")
    if done.returncode != 0:
        raise LiteEnvError(
            f"pip could not download the build tools ({', '.join(requirements)})",
            hint=_tail(done.stdout + done.stderr),
        )
    run = str(folder / "bin" / "chroot-run")
    _remove(folder / "chroot" / venv.lstrip("/"))
    for command in (
        [run, "python3", "-m", "venv", venv],
        [run, f"{venv}/bin/python", "-m", "pip", "--isolated", "install", "--no-index",
         "--find-links", str(wheels), "--disable-pip-version-check", "-q", *requirements],
    ):  # fmt: skip
        done = _run(command, what="the build venv", env=_clean_env())
        if done.returncode != 0:
            raise LiteEnvError(
                "cannot make the build venv in the emscripten chroot",
                hint=_tail(done.stdout + done.stderr),
            )
    stamp = {
        "wanted": wanted,
        "wheels": {path.name: _sha256(path) for path in sorted(wheels.glob("*.whl"))},
    }
    _write_json(stamp_path, stamp)
    return stamp


CHROOT_RUN = r"""#!/bin/sh
# Run a command inside lite-env's emscripten chroot, in a private mount namespace where the
# host folders a build uses are bound at their own paths (generated by lite-env; do not edit).
set -euf
PATH=/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
root=%(root)s
toolchain=%(folder)s
self=%(self)s
case "${LITE_ENV_CHROOT_STAGE:-}" in
inside)
  exec "$@"
  ;;
mounting)
  cwd=$(pwd -P)
  bound=" "
  old_ifs=$IFS
  IFS=':
'
  for path in $cwd $toolchain ${SRC_DIR:-} ${PREFIX:-} ${BUILD_PREFIX:-} ${RECIPE_DIR:-} \
              ${TMPDIR:-/tmp} ${LITE_ENV_CHROOT_BINDS:-}; do
    case $path in /*) ;; *) continue ;; esac
    [ -e "$path" ] || continue
    rest=${path#/}
    top=/${rest%%%%/*}
    case $top in
    / | /usr | /etc | /bin | /sbin | /lib | /lib32 | /lib64 | /libx32 | /var | /opt | /proc | \
    /sys | /dev | /run | /boot) source=$path ;;
    *) source=$top ;;
    esac
    case $bound in *" $source "*) continue ;; esac
    mkdir -p "$root$source"
    mount --bind "$source" "$root$source"
    bound="$bound$source "
  done
  IFS=$old_ifs
  mount -t proc proc "$root/proc" 2>/dev/null || true
  export LITE_ENV_CHROOT_STAGE=inside
  exec chroot "$root" /usr/bin/env \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:%(venv)s/bin \
    /bin/sh -c 'cd "$0" && exec "$@"' "$cwd" "$@"
  ;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "lite-env: the emscripten toolchain runs in a chroot: it needs root" >&2
  exit 126
fi
LITE_ENV_CHROOT_STAGE=mounting exec unshare --mount --propagation private -- "$self" "$@"
"""

TOOL_WRAPPER = """#!/bin/sh
# %(tool)s of lite-env's emscripten toolchain (runs in its chroot; generated, do not edit).
# emscripten's launchers run $PYTHON: a build's $PYTHON names the target's, not the chroot's.
unset PYTHON
exec %(run)s %(tool)s "$@"
"""

PYTHON_WRAPPER = """#!/bin/sh
# Python with setuptools, build, Cython and pip, configured to cross-compile for the Pyodide
# runtime (its sysconfigdata): runs in lite-env's emscripten chroot (generated, do not edit).
for variable in $(env | sed -n 's/^\\(PIP_[A-Za-z0-9_]*\\)=.*/\\1/p'); do unset "$variable"; done
unset PYTHONHOME PYTHONSTARTUP
export _PYTHON_SYSCONFIGDATA_NAME=%(sysconfigdata)s
export _PYTHON_HOST_PLATFORM=%(host_platform)s
export PYTHONPATH=%(sysconfig)s
export PYTHONNOUSERSITE=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CONFIG_FILE=/dev/null
exec %(run)s %(venv)s/bin/python "$@"
"""


def _write_wrappers(toolchain: Toolchain, runtime: dict) -> None:
    """Write bin/ and the cross sysconfigdata (they hold absolute paths of this folder)."""
    toolchain.bin.mkdir(parents=True, exist_ok=True)
    run = toolchain.bin / "chroot-run"
    files = {
        run: CHROOT_RUN
        % {
            "root": _quote(str(toolchain.chroot)),
            "folder": _quote(str(toolchain.folder)),
            "self": _quote(str(run)),
            "venv": VENV,
        },
        toolchain.bin / "python": PYTHON_WRAPPER
        % {
            "sysconfigdata": SYSCONFIGDATA,
            "host_platform": f"{runtime['platform']}_wasm32",
            "sysconfig": _quote(str(toolchain.sysconfig)),
            "run": _quote(str(run)),
            "venv": VENV,
        },
    }
    for tool in TOOLS:
        files[toolchain.bin / tool] = TOOL_WRAPPER % {"tool": tool, "run": _quote(str(run))}
    for path, text in files.items():
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        path.chmod(0o755)
    source = (toolchain.folder / "runtime" / f"{SYSCONFIGDATA}.py").read_text()
    module = toolchain.sysconfig / f"{SYSCONFIGDATA}.py"
    text = cross_sysconfigdata(source, toolchain)
    if not module.is_file() or module.read_text() != text:
        toolchain.sysconfig.mkdir(parents=True, exist_ok=True)
        module.write_text(text)


def _ensure_mmdebstrap() -> str:
    found = shutil.which("mmdebstrap")
    if found:
        return found
    apt_get = shutil.which("apt-get")
    if apt_get is not None:
        done = _run(
            [apt_get, "install", "-y", "-q", "mmdebstrap"],
            what="apt-get install mmdebstrap",
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode != 0:  # the host's package lists may be missing or stale
            _run([apt_get, "update", "-q"], what="apt-get update")
            done = _run(
                [apt_get, "install", "-y", "-q", "mmdebstrap"],
                what="apt-get install mmdebstrap",
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        found = shutil.which("mmdebstrap")
        if done.returncode == 0 and found:
            return found
        hint = _tail(done.stdout + done.stderr)
    else:
        hint = "apt-get is not installed: the toolchain is built from Debian packages"
    raise LiteEnvError(
        "mmdebstrap is missing and could not be installed (`apt-get install mmdebstrap`)",
        hint=hint,
    )


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise LiteEnvError(
            f"{what} needs root (mmdebstrap, chroot and mount namespaces)",
            hint="run `lite-env channel toolchain` once as root; compiled recipes need it",
        )


def _run(
    command: Sequence[str],
    *,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(command),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise LiteEnvError(
            f"{what} did not finish within {TIMEOUT} s",
            hint="check the network access to Debian's archive and PyPI",
        ) from None
    except OSError as error:
        raise LiteEnvError(f"cannot run {what}", hint=str(error)) from None


def _clean_env() -> dict[str, str]:
    """The environment without the host's pip and Python settings (for the chroot's Python)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))
    }


def _deb822_entries(text: str) -> Iterator[tuple[list[str], list[str], list[str]]]:
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in paragraph.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        types, uris = fields.get("types", "").split(), fields.get("uris", "").split()
        if uris:
            yield types, uris, fields.get("suites", "").split()


def _one_line_entries(text: str) -> Iterator[tuple[list[str], list[str], list[str]]]:
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3:
            yield [words[0]], [words[1]], [words[2]]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, value: object) -> None:
    write_atomically(path, json.dumps(value, indent=1, sort_keys=True) + "\n")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])

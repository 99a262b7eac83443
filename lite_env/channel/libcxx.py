"""libc++ headers for the toolchain that match the runtime's libc++, put into its chroot.

Trixie's emscripten 3.1.69 ships libc++ 18's headers; the Pyodide 314 runtime's libc++ is
emscripten 5.0.3's, libc++ 21.1.8 with more ABI-v2 layout flags (`std::basic_ios` is 84
bytes there, 80 with libc++ 18's headers): a C++ module built with the old headers
corrupts memory in the runtime. Debian sid's emscripten 6.0.5 ships the same libc++ headers
as emscripten 5.0.3 (libcxx/include with emscripten's __config_site, and libcxxabi/include:
byte for byte, TREE_SHA256). They replace the chroot's sysroot `include/c++/v1`; trixie's
clang 19 compiles them (libc++ 21 supports clang 19 and later). The C headers stay trixie's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from lite_env.channel.debian import AptArchive
from lite_env.channel.host import read_stamp, write_stamp
from lite_env.errors import LiteEnvError
from lite_env.files import sha256

#: The Debian package (and release) the headers come from: a pinned version.
PACKAGE = "emscripten"
VERSION = "6.0.5+dfsg+~1.41.5-2"
SUITE = "sid"
#: The folders of the package merged into the sysroot's c++/v1, as emscripten itself does.
SOURCES = (
    "usr/share/emscripten/system/lib/libcxx/include",
    "usr/share/emscripten/system/lib/libcxxabi/include",
)
#: Where emcc finds the C++ headers in the chroot.
SYSROOT_HEADERS = "usr/share/emscripten/cache/sysroot/include/c++/v1"
#: tree_sha256 of emscripten 5.0.3's own headers (the same two folders of its release): the
#: runtime's libc++ was built from them.
TREE_SHA256 = "61b3aaadac7e4d38af030493ca2e0bf38a177e1fd31af8be5a3ac495661a8563"
#: The file in the installed folder naming the tree it holds.
MARKER = ".lite-env-libcxx"


def ensure_libcxx(folder: Path, chroot: dict, report: Callable[[str], None]) -> dict:
    """Install the headers into the toolchain's chroot (once); returns their stamp.

    `chroot` is the chroot's stamp: a rebuilt chroot gets the headers again. Raises
    LiteEnvError when the package cannot be downloaded or its headers are not the pinned tree.
    """
    target = folder / "chroot" / SYSROOT_HEADERS
    wanted = {
        "package": f"{PACKAGE}={VERSION}",
        "suite": SUITE,
        "tree_sha256": TREE_SHA256,
        "chroot": chroot["packages"],
    }
    stamp = read_stamp(folder / "libcxx.json")
    marker = target / MARKER
    if stamp and stamp.get("wanted") == wanted and marker.is_file():
        if marker.read_text().strip() == TREE_SHA256:
            return stamp
    report(f"fetching the runtime's libc++ headers ({PACKAGE} {VERSION} from Debian {SUITE})")
    with tempfile.TemporaryDirectory(prefix="libcxx-", dir=folder) as scratch:
        scratch_path = Path(scratch)
        archive = AptArchive(folder / "apt" / "libcxx", [SUITE])
        deb = archive.download(f"{PACKAGE}={VERSION}", scratch_path)
        extracted = scratch_path / "x"
        _extract(deb, extracted)
        headers = scratch_path / "v1"
        headers.mkdir()
        for source in SOURCES:
            shutil.copytree(extracted / source, headers, dirs_exist_ok=True)
        digest = tree_sha256(headers)
        if digest != TREE_SHA256:
            raise LiteEnvError(
                f"{deb.name} holds other libc++ headers than emscripten 5.0.3 (tree sha256"
                f" {digest})",
                hint="the C++ headers must match the runtime's libc++; lite-env needs an update",
            )
        (headers / MARKER).write_text(TREE_SHA256 + "\n")
        old = target.with_name("v1.replaced")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(headers, target)
        shutil.rmtree(old, ignore_errors=True)
        stamp = {"wanted": wanted, "deb": deb.name, "deb_sha256": sha256(deb)}
    write_stamp(folder / "libcxx.json", stamp)
    return stamp


def tree_sha256(folder: Path) -> str:
    """sha256 of a folder's files: a line `path NUL sha256-of-content` each, sorted by path."""
    lines = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MARKER:
            content = sha256(path)
            lines.append(f"{path.relative_to(folder).as_posix()}\0{content}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _extract(deb: Path, target: Path) -> None:
    done = subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        raise LiteEnvError(f"cannot unpack {deb.name}", hint=done.stderr.strip())

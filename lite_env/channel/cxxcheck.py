"""Whether the toolchain's libc++ headers lay the C++ standard library out like the runtime's.

A side module compiled from `cxx_layout.cpp` with the toolchain's em++ is loaded in the Pyodide
runtime under node: it reports the sizes of standard types, formats and parses numbers with
iostreams, and checks the guard bytes after an ostringstream built in place. The runtime's
libc++ (newer than the headers) runs the out-of-line parts of iostreams: if the headers make
an object smaller than the runtime's layout, its code writes past the object. The result is
kept in `toolchain/cxx-layout/result.json` for the toolchain and source it was made with.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lite_env.channel.toolchain import CFLAGS, LDFLAGS, RUNTIME_FILE, Toolchain, _read_json
from lite_env.errors import LiteEnvError
from lite_env.files import write_atomically
from lite_env.pyodide_node import RUNTIME_DIR, run_python

SOURCE = "cxx_layout.cpp"
MODULE = "cxx_layout.so"
#: The runtime's files the check boots (from the pinned npm tarball the toolchain uses).
RUNTIME_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
                 "pyodide-lock.json", "package.json")  # fmt: skip
#: What the guarded streams format (setfill('*'), setw(8), then " 2.5").
FORMATTED = "******42 2.5"
#: Runs in Pyodide: loads the module with ctypes and prints one JSON line.
PROBE = """
import ctypes, json
library = ctypes.CDLL("/cxx-layout/cxx_layout.so")
buffer = ctypes.create_string_buffer(2048)
library.lite_env_cxx_sizes(buffer, len(buffer))
sizes = {k: int(v) for k, v in (item.split("=") for item in buffer.value.decode().split(";"))}
ok = library.lite_env_cxx_round_trip(buffer, len(buffer))
result = {"sizes": sizes, "round_trip": buffer.value.decode(), "round_trip_ok": bool(ok)}
result["guards"], result["formatted"] = {}, {}
for name in ("ostringstream", "stringstream"):
    changed = getattr(library, "lite_env_cxx_guard_" + name)(buffer, len(buffer))
    result["guards"][name], result["formatted"][name] = changed, buffer.value.decode()
print("LAYOUT " + json.dumps(result))
"""


@dataclass(frozen=True)
class CxxLayout:
    """What the layout check found in the runtime.

    Attributes:
        sizes: sizeof of standard types as the toolchain's headers define them.
        round_trip: the text an ostringstream wrote (numbers, hex, a word).
        round_trip_ok: whether an istringstream read the same values back.
        guards: per stream type built in place, the guard bytes the runtime's libc++ changed
            past the object's end (0 when the layouts agree).
        formatted: per stream type, what it wrote with setfill('*') and setw(8)
            (FORMATTED when the runtime reads the fill character where the headers put it).
    """

    sizes: Mapping[str, int]
    round_trip: str
    round_trip_ok: bool
    guards: Mapping[str, int]
    formatted: Mapping[str, str]

    @property
    def matches(self) -> bool:
        """True when the runtime's libc++ works on objects laid out by these headers."""
        return (
            self.round_trip_ok
            and all(changed == 0 for changed in self.guards.values())
            and all(text == FORMATTED for text in self.formatted.values())
        )

    def problems(self) -> list[str]:
        """One line per failed check."""
        found = [] if self.round_trip_ok else [f"iostream round trip wrote {self.round_trip!r}"]
        for name, changed in sorted(self.guards.items()):
            if changed:
                found.append(
                    f"the runtime's libc++ wrote {changed} byte(s) past a std::{name} of"
                    f" {self.sizes.get(name, '?')} bytes"
                )
        for name, text in sorted(self.formatted.items()):
            if text != FORMATTED:
                found.append(f"std::{name} formatted {text!r}, not {FORMATTED!r}")
        return found

    def to_json(self) -> dict:
        return {
            "sizes": dict(self.sizes),
            "round_trip": self.round_trip,
            "round_trip_ok": self.round_trip_ok,
            "guards": dict(self.guards),
            "formatted": dict(self.formatted),
            "matches": self.matches,
        }


def check_cxx_layout(
    toolchain: Toolchain, *, cache_dir: Path, report: Callable[[str], None] = lambda _: None
) -> CxxLayout:
    """Compile and run the layout check (or read its kept result for this toolchain)."""
    folder = toolchain.folder / "cxx-layout"
    source = resources.files("lite_env.channel").joinpath(SOURCE).read_text()
    stamp = (toolchain.folder / "stamp.json").read_bytes()
    key = hashlib.sha256(source.encode() + b"\0" + stamp).hexdigest()
    kept = _read_json(folder / "result.json")
    if kept and kept.get("key") == key:
        return _layout(kept["layout"])
    report("checking the C++ layout of the toolchain's libc++ headers in the runtime")
    work = folder / "work"
    (work / "prefix" / RUNTIME_DIR).mkdir(parents=True, exist_ok=True)
    (work / "prefix" / "lib" / "python3.14" / "site-packages").mkdir(parents=True, exist_ok=True)
    (work / "module").mkdir(exist_ok=True)
    with tarfile.open(cache_dir.absolute() / "npm" / RUNTIME_FILE) as archive:
        for name in RUNTIME_FILES:
            member = archive.extractfile(f"package/{name}")
            (work / "prefix" / RUNTIME_DIR / name).write_bytes(member.read())  # type: ignore[union-attr]
    (work / "module" / SOURCE).write_text(source)
    compile_command = [
        str(toolchain.bin / "em++"), *CFLAGS.split(), *LDFLAGS.split(),
        str(work / "module" / SOURCE), "-o", str(work / "module" / MODULE),
    ]  # fmt: skip
    done = subprocess.run(compile_command, capture_output=True, text=True)
    if done.returncode != 0:
        raise LiteEnvError(
            f"em++ could not compile the C++ layout check ({SOURCE})",
            hint=(done.stdout + done.stderr).strip()[-2000:],
        )
    done = run_python(work / "prefix", PROBE, mounts={work / "module": "/cxx-layout"}, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("LAYOUT ")]
    if done.returncode != 0 or not lines:
        raise LiteEnvError(
            "the C++ layout check did not run in the Pyodide runtime",
            hint=(done.stdout + done.stderr).strip()[-2000:],
        )
    layout = _layout(json.loads(lines[-1].removeprefix("LAYOUT ")))
    write_atomically(
        folder / "result.json",
        json.dumps({"key": key, "layout": layout.to_json()}, indent=1, sort_keys=True) + "\n",
    )
    return layout


def require_cxx_layout(layout: CxxLayout, toolchain: Toolchain) -> None:
    """Raise LiteEnvError when the headers' layout does not match the runtime's libc++."""
    if not layout.matches:
        raise LiteEnvError(
            f"the toolchain's libc++ headers (emscripten {toolchain.emscripten}) do not lay out"
            " the C++ standard library like the runtime's libc++: " + "; ".join(layout.problems()),
            hint="C extensions are fine; C++ code using iostreams would corrupt memory in"
            " Pyodide: it needs libc++ headers matching the runtime's emscripten",
        )


def _layout(data: Mapping) -> CxxLayout:
    return CxxLayout(
        sizes=dict(data["sizes"]),
        round_trip=data["round_trip"],
        round_trip_ok=data["round_trip_ok"],
        guards=dict(data["guards"]),
        formatted=dict(data["formatted"]),
    )

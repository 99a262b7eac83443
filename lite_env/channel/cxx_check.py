"""The toolchain's C++ check: its libc++ headers must lay objects out as the runtime's libc++.

A side module compiled from `cxx_probe.cpp` with the toolchain's em++ is loaded by the Pyodide
runtime under node. It reports the libc++ version, ABI flags and sizeof/alignof of standard
types as the toolchain's headers see them, and runs libc++ code that lives in the runtime
(iostream formatting and parsing, std::to_string, locale, exceptions thrown across the module
boundary) on objects the module allocated, with guard bytes behind each one. The sizes are
compared with RUNTIME_LAYOUT, the layout of emscripten 5.0.3's libc++ (the runtime's), and the
round trip's results with ROUND_TRIP; any difference is a LiteEnvError, so a compiled recipe
fails before it can corrupt memory in the runtime.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from lite_env.channel.host import read_stamp, run, write_stamp
from lite_env.errors import LiteEnvError, log_tail
from lite_env.files import sha256
from lite_env.pyodide_node import RUNTIME_DIR, run_python

PROBE = Path(__file__).with_name("cxx_probe.cpp")
#: The probe as a side module (not an extension module: it is loaded with ctypes).
PROBE_MODULE = "libliteenvcxxprobe.so"
#: The runtime's libc++: emscripten 5.0.3's (libc++ 21.1.8, ABI version 2), on wasm32.
#: [sizeof, alignof] of each type, as the probe reports them when compiled with emscripten
#: 5.0.3's own libc++ headers (system/lib/libcxx/include of its release).
RUNTIME_LAYOUT: dict[str, object] = {
    "libcpp_version": 210108,
    "abi_version": 2,
    "flags": [
        "IOS_ALLOW_ARBITRARY_FILL_VALUE",
        "NO_COMPRESSED_PAIR_PADDING",
        "ALTERNATE_STRING_LAYOUT",
        "FIX_UNORDERED_CONTAINER_SIZE_TYPE",
        "ENABLE_SHARED_PTR_TRIVIAL_ABI",
        "VARIANT_INDEX_TYPE_OPTIMIZATION",
    ],
    "types": {
        "std::string": (12, 4),
        "std::wstring": (12, 4),
        "std::ios_base": (72, 4),
        "std::basic_ios<char>": (84, 4),
        "std::streambuf": (32, 4),
        "std::stringbuf": (52, 4),
        "std::ostream": (88, 4),
        "std::ostringstream": (140, 4),
        "std::istringstream": (144, 4),
        "std::stringstream": (148, 4),
        "std::vector<int>": (12, 4),
        "std::vector<bool>": (12, 4),
        "std::shared_ptr<int>": (8, 4),
        "std::unique_ptr<int>": (4, 4),
        "std::function<int(int)>": (24, 8),
        "std::unordered_map<int,int>": (20, 4),
        "std::locale": (4, 4),
        "std::exception_ptr": (4, 4),
        "std::runtime_error": (8, 4),
        "long double": (16, 8),
        "max_align_t": (24, 8),
    },
}
#: What the round trip must give, part by part in this order: no byte written behind any
#: object (two guard patterns each), formatting and parsing through the runtime's iostreams,
#: std::to_string, containers with locale, exceptions.
ROUND_TRIP: dict[str, object] = {
    "overrun": {
        "std::ostringstream": 0,
        "std::stringstream": 0,
        "std::istringstream": 0,
        "std::locale": 0,
        "std::string": 0,
    },
    "format": "    42|***3.142|ab***|0xff|1.23e+04|   7",
    "parse": "42,-3.25,word,31,1",
    "to_string": "-12345 2.500000",
    "containers": "97,5390,101,2,.",
    "exceptions": "invalid_argument;out_of_range;thrown in the module 7;rethrown stored;",
}
#: Runs in Pyodide: loads the probe and prints each part's report as it comes, one line each
#: (`name json`): a part that corrupts memory may abort the runtime.
DRIVER = f"""
import ctypes
probe = ctypes.CDLL("/probe/{PROBE_MODULE}")
for name in {("layout", *ROUND_TRIP)!r}:
    function = getattr(probe, "lite_env_cxx_" + name)
    function.restype = ctypes.c_char_p
    print(name, function().decode(), flush=True)
"""
#: Seconds the probe may take to run.
TIMEOUT = 300


def check_cxx_layout(
    folder: Path,
    em_xx: Path,
    runtime_tarball: Callable[[], Path],
    *,
    flags: str,
    inputs: dict,
    report: Callable[[str], None] = lambda message: None,
) -> dict:
    """Compile the probe with `em_xx` and run it in the runtime of `runtime_tarball()`.

    Args:
        folder: the toolchain's folder (the probe is built in a scratch folder there, the
            runtime unpacked into `cxx-check/`, the result kept in `cxx-check/check.json`).
        em_xx: the toolchain's em++ wrapper.
        runtime_tarball: returns the Pyodide npm tarball the toolchain targets.
        flags: the compile and link flags of a side module.
        inputs: what the toolchain is made of: the check runs again when they change.

    Returns the probe's reports ({"layout": ..., "round_trip": ...}). Raises LiteEnvError when
    the probe does not compile or load, or its layout or round trip differs from the runtime's.
    """

    prefix = folder / "cxx-check"
    wanted = {
        "probe_sha256": sha256(PROBE),
        "runtime_layout": RUNTIME_LAYOUT,
        "round_trip": ROUND_TRIP,
        "flags": flags,
        "inputs": inputs,
    }
    wanted = json.loads(json.dumps(wanted))  # as read back from the stamp (tuples are lists)
    stamp = read_stamp(prefix / "check.json")
    if stamp and stamp.get("wanted") == wanted:
        return stamp
    runtime = _unpack_runtime(runtime_tarball(), prefix / RUNTIME_DIR)
    report("checking the C++ layout against the runtime's libc++ (probe in Pyodide)")
    with tempfile.TemporaryDirectory(prefix="cxx-probe-", dir=folder) as scratch:
        build = Path(scratch)
        shutil.copyfile(PROBE, build / PROBE.name)
        command = [str(em_xx), *flags.split(), "-std=c++17", PROBE.name, "-o", PROBE_MODULE]
        done = run(command, what="em++ on the C++ layout probe", cwd=build)
        if done.returncode != 0:
            raise LiteEnvError(
                "the toolchain cannot compile its C++ layout probe (cxx_probe.cpp)",
                hint=log_tail(done.stdout + done.stderr),
            )
        ran = run_python(runtime.parent.parent, DRIVER, mounts={build: "/probe"}, timeout=TIMEOUT)
    reports = {}
    for line in ran.stdout.splitlines():
        name, _, value = line.partition(" ")
        if name == "layout" or name in ROUND_TRIP:
            reports[name] = json.loads(value)
    if "layout" not in reports:
        raise LiteEnvError(
            "the C++ layout probe did not run in the Pyodide runtime",
            hint=log_tail(ran.stdout + ran.stderr),
        )
    layout = reports.pop("layout")
    differences = layout_differences(layout, RUNTIME_LAYOUT)
    differences += round_trip_differences(reports, ROUND_TRIP)
    if ran.returncode != 0:
        errors = [line for line in ran.stderr.splitlines() if "Error:" in line]
        differences.append(
            f"the round trip aborted the runtime after {', '.join(reports) or 'no part'}"
            f" ({errors[0].strip() if errors else f'exit status {ran.returncode}'})"
        )
    if differences:
        raise LiteEnvError(
            "the toolchain's C++ standard library headers do not match the runtime's libc++: "
            + "; ".join(differences),
            hint="C++ extension modules built with them would corrupt memory in Pyodide. The"
            " toolchain needs libc++ headers of the runtime's emscripten (libc++"
            f" {RUNTIME_LAYOUT['libcpp_version']}, ABI v{RUNTIME_LAYOUT['abi_version']})",
        )
    stamp = {"wanted": wanted, "layout": layout, "round_trip": reports}
    write_stamp(prefix / "check.json", stamp)
    return stamp


def layout_differences(found: dict, runtime: dict) -> list[str]:
    """How the probe's layout report differs from the runtime's, one phrase per difference."""
    differences = [
        f"{key} is {found.get(key)} here, {runtime[key]} in the runtime"
        for key in ("libcpp_version", "abi_version", "flags")
        if found.get(key) != runtime[key]
    ]
    for name, (size, align) in runtime["types"].items():
        here = found.get("types", {}).get(name)
        if here != [size, align]:
            shown = f"{here[0]} bytes (align {here[1]})" if here else "missing"
            differences.append(f"{name} is {shown} here, {size} (align {align}) in the runtime")
    return differences


def round_trip_differences(found: dict, expected: dict) -> list[str]:
    """How the parts of the round trip that ran differ from the expected results."""
    differences = []
    for key, value in expected.items():
        if key not in found:
            continue
        if key == "overrun":
            differences += [
                f"the runtime wrote {changed} bytes past the end of a {name}"
                for name, changed in found[key].items()
                if changed != value.get(name, 0)
            ]
        elif found[key] != value:
            differences.append(f"{key} gave {found[key]!r}, expected {value!r}")
    return differences


def _unpack_runtime(tarball: Path, target: Path) -> Path:
    """Pyodide's core files from the npm tarball in `target` (once per tarball)."""
    digest = sha256(tarball)
    marker = target / ".tarball-sha256"
    if marker.is_file() and marker.read_text() == digest:
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.count("/") == 1:
                member.name = member.name.split("/", 1)[1]
                archive.extract(member, target, filter="data")
    marker.write_text(digest)
    return target

"""Time lite-env's build: its stages for the default environment (cold and warm caches), and
how pack time and image size grow with the environment (synthetic packages).

Stage times come from `lite_env.pipeline.build`'s own stage reports (the time between one
report and the next), and from direct calls for the finer split (solve, lock write, cache
population vs linking inside install).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from machine import foreign_load, sample
from sites import WORK, environment_file

from lite_env.conda_file import PackageFile, write_conda
from lite_env.install import install_prefix
from lite_env.lock import lock_environment, write_lock
from lite_env.pack import pack
from lite_env.pipeline import build
from lite_env.solve import solve
from lite_env.spec import read_spec

SCALE = WORK / "scale"
SITE_PACKAGES = "lib/python3.14/site-packages/"
RUNTIME_NAMES = {"python", "python_abi", "pyodide-abi"}
TIMESTAMP = 1_764_000_000_000


class StageClock:
    """Receives build()'s stage reports; a stage lasts until the next report (or the end)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.marks: list[tuple[str, float]] = []

    def __call__(self, message: str) -> None:
        self.marks.append((message, time.perf_counter()))

    def finish(self) -> dict[str, float]:
        now = time.perf_counter()
        ends = [t for _, t in self.marks[1:]] + [now]
        stages = {name: round(end - t, 3) for (name, t), end in zip(self.marks, ends, strict=True)}
        return {**stages, "total": round(now - self.started, 3)}


class InstallClock:
    """An InstallerReporter that keeps when cache population and linking started and ended."""

    def __init__(self) -> None:
        self.populate: list[tuple[float, float]] = []
        self.link: list[tuple[float, float]] = []
        self._open: dict[tuple[str, int], float] = {}
        self._count = 0

    def _start(self, kind: str) -> int:
        self._count += 1
        self._open[(kind, self._count)] = time.perf_counter()
        return self._count

    def _end(self, kind: str, token: int, into: list) -> None:
        started = self._open.pop((kind, token), None)
        if started is not None:
            into.append((started, time.perf_counter()))

    def on_populate_cache_start(self, operation: int, package_name: str) -> int:
        return self._start("populate")

    def on_populate_cache_complete(self, cache_entry: int) -> None:
        self._end("populate", cache_entry, self.populate)

    def on_link_start(self, operation: int, package_name: str) -> int:
        return self._start("link")

    def on_link_complete(self, index: int) -> None:
        self._end("link", index, self.link)

    def __getattr__(self, name: str):  # every other callback: a no-op returning a token
        if name.startswith("on_"):
            return lambda *args, **kwargs: 0
        raise AttributeError(name)

    def spans(self, origin: float) -> dict:
        def span(pairs):
            if not pairs:
                return None
            return {
                "first_start_s": round(min(p[0] for p in pairs) - origin, 3),
                "last_end_s": round(max(p[1] for p in pairs) - origin, 3),
                "sum_s": round(sum(p[1] - p[0] for p in pairs), 3),
                "count": len(pairs),
            }

        return {"populate_cache": span(self.populate), "link": span(self.link)}


def _warm_copy(source: Path, target: Path) -> None:
    """A cache folder with the shared cache's packages and repodata, but no builds."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("pkgs", "repodata", "wheels", "npm"):
        if (source / name).exists():
            shutil.copytree(source / name, target / name, symlinks=True)


def stage_times(cache_dir: Path, *, log=print) -> dict:
    """build() of the default environment: cold caches, warm package cache, unchanged lock;
    and solve / lock / install split finely, cold and warm."""
    results: dict = {}
    spec_path = environment_file("default")
    with tempfile.TemporaryDirectory(prefix="bench-build-") as scratch:
        scratch = Path(scratch)
        for scenario in ("cold", "warm-packages", "unchanged-lock"):
            cache = scratch / ("cache-cold" if scenario == "cold" else "cache-warm")
            if scenario == "warm-packages":
                _warm_copy(cache_dir, cache)
            env_dir = scratch / f"env-{scenario}"
            env_dir.mkdir()
            shutil.copyfile(spec_path, env_dir / "environment.yml")
            if scenario == "unchanged-lock":
                shutil.copyfile(scratch / "env-warm-packages" / "environment.lock",
                                env_dir / "environment.lock")  # fmt: skip
            spec = read_spec(env_dir / "environment.yml")
            clock = StageClock()
            before = sample()
            result = build(spec, scratch / f"site-{scenario}", cache_dir=cache, report=clock)
            times = clock.finish()
            results[f"build:{scenario}"] = {
                "stages_s": times,
                "reused_image": result.prepared.reused,
                "load": foreign_load(before, sample()),
            }
            log(f"[build] {scenario}: {times}")

        # finer: solve, write the lock, install (cache population vs link), cold and warm
        for scenario in ("cold", "warm"):
            cache = scratch / f"fine-{scenario}"
            if scenario == "warm":
                _warm_copy(cache_dir, cache)
            env_dir = scratch / f"fine-env-{scenario}"
            env_dir.mkdir()
            shutil.copyfile(spec_path, env_dir / "environment.yml")
            spec = read_spec(env_dir / "environment.yml")
            started = time.perf_counter()
            records = solve(spec, cache_dir=cache)
            solved = time.perf_counter()
            write_lock(env_dir / "environment.lock", spec, records)
            locked = time.perf_counter()
            clock = InstallClock()
            install_prefix(records, scratch / f"prefix-{scenario}", cache_dir=cache, reporter=clock)
            installed = time.perf_counter()
            results[f"fine:{scenario}"] = {
                "solve_s": round(solved - started, 3),
                "write_lock_s": round(locked - solved, 3),
                "install_s": round(installed - locked, 3),
                "install_detail": clock.spans(locked),
                "packages": len(records),
            }
            log(f"[build] fine {scenario}: {results[f'fine:{scenario}']}")
    return results


# -- pack scaling ------------------------------------------------------------------------


def _real_payloads(prefix: Path) -> list[tuple[str, list[tuple[str, bytes, int]]]]:
    """The site-packages files of each real noarch package in an installed prefix."""
    import json

    payloads = []
    for meta in sorted((prefix / "conda-meta").glob("*.json")):
        record = json.loads(meta.read_text())
        if record["name"] in RUNTIME_NAMES:
            continue
        files = []
        for path in record.get("files", []):
            if not path.startswith(SITE_PACKAGES) or "__pycache__" in path:
                continue
            source = prefix / path
            if source.is_file() and not source.is_symlink():
                mode = 0o755 if source.stat().st_mode & 0o111 else 0o644
                files.append((path[len(SITE_PACKAGES) :], source.read_bytes(), mode))
        payloads.append((record["name"], files))
    return payloads


def synthetic_channel(prefix: Path, count: int, channel: Path) -> list[str]:
    """Write `count` noarch packages into `channel`, each a clone of a real package's
    site-packages files under a new top-level folder (so sizes and contents are realistic)."""
    from lite_env.channel.index import index_channel

    payloads = _real_payloads(prefix)
    names = []
    for i in range(count):
        origin, files = payloads[i % len(payloads)]
        name = f"synth{i:03d}-{origin}"
        folder = f"synth{i:03d}_{origin.replace('-', '_')}"
        index = {
            "name": name, "version": "1.0", "build": "pyh0_0", "build_number": 0,
            "subdir": "noarch", "noarch": "python", "depends": ["python >=3.10"],
            "timestamp": TIMESTAMP, "license": "MIT",
        }  # fmt: skip
        package_files = [
            PackageFile(f"site-packages/{folder}/{path}", data, mode) for path, data, mode in files
        ]
        write_conda(channel / "noarch", index, package_files)
        names.append(name)
    index_channel(channel)
    return names


def _tree_bytes(folder: Path) -> tuple[int, int]:
    size, count = 0, 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            size += path.stat().st_size
            count += 1
    return size, count


def disk_speed(folder: Path, scratch: Path) -> dict:
    """Reference speeds on the same data: cp -r of the prefix, tar | gzip -9 and -6 of it
    (one core, like pack), and a 256 MB dd write with fdatasync."""
    size, _ = _tree_bytes(folder)
    result = {"bytes": size}
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(folder), str(scratch / "copy")], check=True)
    subprocess.run(["sync"], check=True)
    result["cp_r_s"] = round(time.perf_counter() - started, 3)
    for level in ("9", "6"):
        started = time.perf_counter()
        subprocess.run(
            f"tar -C {folder} -cf - . | gzip -{level} > {scratch / 'tree.tar.gz'}",
            shell=True, check=True,
        )  # fmt: skip
        result[f"tar_gzip{level}_s"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={scratch / 'dd.bin'}", "bs=1M", "count=256",
         "conv=fdatasync", "status=none"], check=True,
    )  # fmt: skip
    result["dd_256MB_s"] = round(time.perf_counter() - started, 3)
    shutil.rmtree(scratch / "copy", ignore_errors=True)
    for name in ("tree.tar.gz", "dd.bin"):
        (scratch / name).unlink(missing_ok=True)
    mb = size / 1e6
    result["cp_r_MBps"] = round(mb / result["cp_r_s"], 1)
    result["gzip9_MBps"] = round(mb / result["tar_gzip9_s"], 1)
    result["gzip6_MBps"] = round(mb / result["tar_gzip6_s"], 1)
    result["dd_MBps"] = round(256 * 1.048576 / result["dd_256MB_s"], 1)
    return result


def pack_scaling(cache_dir: Path, sizes=(20, 60, 120), *, repeats: int = 2, log=print) -> dict:
    """Install environments of about `sizes` packages (the kernel-only one, then the default
    one plus synthetic clones) and time pack() on each (best of `repeats`, fresh output)."""
    shutil.rmtree(SCALE, ignore_errors=True)
    SCALE.mkdir(parents=True)
    results = {"method": "kernel-only environment for the smallest size; the default "
               "environment plus synthetic noarch packages (clones of the real packages' "
               "site-packages files under new names) for the bigger ones", "sizes": []}  # fmt: skip
    base_spec = read_spec(environment_file("default"))
    base_lock = lock_environment(base_spec, cache_dir=cache_dir)
    base_prefix = install_prefix(base_lock.records, SCALE / "base-prefix", cache_dir=cache_dir)
    channel = SCALE / "channel"
    extra_max = max(sizes) - len(base_lock.records)
    synth = synthetic_channel(base_prefix, max(extra_max, 0), channel)
    for size in sizes:
        env_dir = SCALE / f"env-{size}"
        env_dir.mkdir()
        if size <= 25:
            text = environment_file("kernel").read_text()
        else:
            names = synth[: max(size - len(base_lock.records), 0)]
            text = base_spec.path.read_text().replace(
                "channels:\n", f"channels:\n  - {channel}\n", 1
            ) + "".join(f"  - {n}\n" for n in names)
        (env_dir / "environment.yml").write_text(text)
        spec = read_spec(env_dir / "environment.yml")
        lock = lock_environment(spec, cache_dir=cache_dir)
        started = time.perf_counter()
        prefix = install_prefix(lock.records, env_dir / "prefix", cache_dir=cache_dir)
        install_s = time.perf_counter() - started
        best, image, loads = None, None, []
        for attempt in range(repeats):
            out = env_dir / f"image-{attempt}"
            before = sample()
            started = time.perf_counter()
            image = pack(prefix, out)
            elapsed = time.perf_counter() - started
            loads.append(foreign_load(before, sample()))
            best = elapsed if best is None else min(best, elapsed)
            shutil.rmtree(out)
        site_packages_bytes, files = _tree_bytes(prefix / "lib")
        row = {
            "packages": len(lock.records),
            "install_s": round(install_s, 3),
            "pack_s": round(best, 3),
            "image_raw": image.raw_size,
            "image_gz": image.size,
            "image_files": sum(len(c.files) for c in image.chunks),
            "pack_MBps_raw": round(image.raw_size / 1e6 / best, 1),
            "load": loads,
        }
        with tempfile.TemporaryDirectory(dir=SCALE) as scratch:
            row["reference"] = disk_speed(prefix / "lib", Path(scratch))
        results["sizes"].append(row)
        log(f"[pack] {size}: {row}")
    return results


if __name__ == "__main__":
    import json
    import sys

    from lite_env.cache import cache_dir as default_cache

    what = sys.argv[1:] or ["stages", "scaling"]
    out = {}
    if "stages" in what:
        out["stages"] = stage_times(default_cache())
    if "scaling" in what:
        out["scaling"] = pack_scaling(default_cache())
    print(json.dumps(out, indent=2))

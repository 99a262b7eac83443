"""What the machine is, and how busy other processes kept it during a measurement."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def machine_info() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = int(re.search(r"^MemTotal:\s+(\d+)", meminfo, re.MULTILINE).group(1))
    chromium = _version(["/usr/bin/chromium", "--version"])
    node = _version(["node", "--version"])
    try:
        from importlib.metadata import version

        playwright = version("playwright")
    except Exception:  # noqa: BLE001
        playwright = "?"
    commit = _version(
        ["git", "-C", str(Path(__file__).resolve().parent.parent), "rev-parse", "HEAD"]
    )
    return {
        "commit": commit,
        "cores": NCPU,
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "chromium": chromium,
        "node": node,
        "python": platform.python_version(),
        "playwright": playwright,
    }


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "?"


@dataclass(frozen=True)
class CpuSample:
    at: float
    busy_ticks: int  # all CPUs, from /proc/stat
    per_pid: dict[int, tuple[int, int]]  # pid → (ppid, utime+stime ticks)
    loadavg: str


def sample() -> CpuSample:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    per_pid = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2 :].split()
        per_pid[int(entry.name)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
    return CpuSample(
        time.time(), sum(values) - idle, per_pid, Path("/proc/loadavg").read_text().strip()
    )


def _mine(per_pid: dict[int, tuple[int, int]], me: int) -> set[int]:
    mine = set()
    for pid in per_pid:
        seen, current = 0, pid
        while current and seen < 64:
            if current == me:
                mine.add(pid)
                break
            current = per_pid.get(current, (0, 0))[0]
            seen += 1
    return mine


def foreign_load(before: CpuSample, after: CpuSample) -> dict:
    """CPU used by processes that are not this one or its children, between two samples.

    `foreign_cpu_s` sums the per-process CPU time of other processes alive at the end (new
    ones count whole); `total_busy_s` is the whole machine's busy time from /proc/stat.
    """
    me = os.getpid()
    mine = _mine(after.per_pid, me)
    foreign = 0
    for pid, (_, ticks) in after.per_pid.items():
        if pid in mine:
            continue
        foreign += ticks - before.per_pid.get(pid, (0, 0))[1]
    mine_ticks = sum(after.per_pid[pid][1] - before.per_pid.get(pid, (0, 0))[1] for pid in mine)
    wall = max(after.at - before.at, 1e-6)
    return {
        "wall_s": round(wall, 3),
        "foreign_cpu_s": round(max(foreign, 0) / TICKS, 2),
        "foreign_share": round(max(foreign, 0) / TICKS / (wall * NCPU), 3),
        "mine_cpu_s": round(mine_ticks / TICKS, 2),
        "total_busy_s": round((after.busy_ticks - before.busy_ticks) / TICKS, 2),
        "loadavg_before": before.loadavg,
        "loadavg_after": after.loadavg,
    }

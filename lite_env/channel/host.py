"""Host tools the toolchain runs: a subprocess with a time limit and a clear error, and the
JSON stamps that record what a cached step was made from."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lite_env.errors import LiteEnvError, log_tail
from lite_env.files import write_atomically

#: Seconds a download or mmdebstrap may take.
TIMEOUT = 1800


def run(
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


def run_checked(command: Sequence[str], *, what: str, cwd: Path | None = None) -> str:
    """Run a tool and return its output; LiteEnvError with the output's tail when it fails."""
    done = run(command, what=what, cwd=cwd)
    if done.returncode != 0:
        raise LiteEnvError(
            f"{what} failed",
            hint=log_tail(done.stdout + done.stderr) or f"it exited with {done.returncode}",
        )
    return done.stdout


def clean_env() -> dict[str, str]:
    """The environment without the host's pip and Python settings (for the chroot's Python)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))
    }


def read_stamp(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_stamp(path: Path, value: object) -> None:
    write_atomically(path, json.dumps(value, indent=1, sort_keys=True) + "\n")

"""Where lite-env keeps what it downloads: one user cache folder, overridable."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "LITE_ENV_CACHE_DIR"


def cache_dir(override: str | Path | None = None) -> Path:
    """The cache folder: `override`, else $LITE_ENV_CACHE_DIR, else the user cache dir."""
    if override is not None:
        return Path(override).absolute()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).absolute()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lite-env"

"""Index a channel folder with rattler: repodata.json (+ .zst) and sharded repodata."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from rattler.index import index_fs

from lite_env.platform import SUBDIRS


def index_channel(channel_dir: Path) -> Path:
    """Write the repodata of every subdir (emscripten-wasm32 and noarch always exist)."""
    for subdir in SUBDIRS:
        (channel_dir / subdir).mkdir(parents=True, exist_ok=True)
    asyncio.run(index_fs(channel_dir, write_zst=True, write_shards=True, force=True))
    shutil.rmtree(channel_dir / ".tmp", ignore_errors=True)
    return channel_dir

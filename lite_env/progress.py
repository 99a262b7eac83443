"""Progress bars on stderr for work that takes more than a moment (downloads, installs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

#: Markup is off on every console: the text printed holds file names, specs and messages
#: from environment files and channels, where `[/x]` is text, not a style (rich would fail).
stderr = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def labelled(label: str, style: str, text: str) -> Text:
    """`label` in `style`, then the text as it is (never read as markup)."""
    return Text.assemble((label, style), " ", text)


class InstallProgress:
    """A rattler InstallerReporter that shows packages fetched and linked, and bytes downloaded."""

    def __init__(self, progress: Progress, total_packages: int) -> None:
        self._progress = progress
        self._packages = progress.add_task("install", total=total_packages)
        self._bytes = progress.add_task("fetching", total=None, visible=False)
        self._downloads: dict[int, int] = {}
        self._next = 0

    def on_download_start(self, cache_entry: int) -> int:
        self._next += 1
        self._downloads[self._next] = 0
        self._progress.update(self._bytes, visible=True)
        return self._next

    def on_download_progress(self, download_idx: int, progress: int, total: int | None) -> None:
        self._downloads[download_idx] = progress
        done = sum(self._downloads.values())
        self._progress.update(self._bytes, description=f"{decimal(done)} fetched")

    def on_link_complete(self, index: int) -> None:
        self._progress.advance(self._packages)

    def __getattr__(self, name: str):
        # rattler calls every hook of the protocol; the ones not defined above do nothing.
        if name.startswith("on_"):
            return lambda *args, **kwargs: 0
        raise AttributeError(name)


@contextmanager
def install_progress(
    total_packages: int, *, enabled: bool = True
) -> Iterator[InstallProgress | None]:
    """Show install progress while the block runs (nothing when not enabled)."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("{task.description:>16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr, transient=True) as progress:
        yield InstallProgress(progress, total_packages)

"""The site's pages of the apps that start a kernel, and the blocks lite-env writes into them.

A block is a few lines at the top of a page's `<head>`, between two comments that name it, so
that writing it again replaces it and `remove_block` takes it out (the benchmark's floor does).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from lite_env.errors import LiteEnvError
from lite_env.files import write_atomically

#: The JupyterLite apps whose page starts a kernel; the file browser (tree) and editor do not.
KERNEL_APPS = ("lab", "notebooks", "repl", "consoles")


def kernel_pages(site: Path) -> list[Path]:
    """The pages of a built site's apps that start a kernel (those the site has)."""
    return [page for app in KERNEL_APPS if (page := site / app / "index.html").is_file()]


def write_block(page: Path, name: str, lines: Sequence[str]) -> None:
    """Put `lines` at the top of the page's `<head>` as the block `name`, replacing it if the
    page has it already."""
    text = remove_block(page.read_text(encoding="utf-8"), name)
    if "<head>" not in text:
        raise LiteEnvError(f"{page}: a JupyterLite page without <head>")
    begin, end = _markers(name)
    block = "\n    ".join([begin, *lines, end])
    write_atomically(page, text.replace("<head>", f"<head>\n    {block}", 1))


def remove_block(text: str, name: str) -> str:
    """A page's text without the block `name`."""
    begin, end = _markers(name)
    return re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", "", text, flags=re.DOTALL)


def has_block(text: str, name: str) -> bool:
    """Whether a page's text holds the block `name`."""
    return _markers(name)[0] in text


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- lite-env: {name} -->", f"<!-- lite-env: end of {name} -->"

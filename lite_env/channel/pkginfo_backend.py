"""A PEP 517 backend that only reports an sdist's metadata, from the sdist's own PKG-INFO.

`pip download` of an sdist prepares its metadata through the project's backend; for some that
means configuring the whole build on the host (matplotlib's meson setup downloads FreeType and
Qhull). lite-env only needs the file there, so for a recipe source with `backend: <module>`
this file is copied in as `<module>.py`, ahead of the real backend on pip's path
(lite_env.channel.recipes.fetch_pypi_source). The sdist is still checked against its sha256.
"""

from __future__ import annotations

import email.parser
from pathlib import Path


def get_requires_for_build_wheel(config_settings: object = None) -> list[str]:
    """Nothing to install: the metadata is read, not built."""
    return []


def prepare_metadata_for_build_wheel(directory: str, config_settings: object = None) -> str:
    """Write `<name>-<version>.dist-info/METADATA` from PKG-INFO (pip runs this in the sdist)."""
    text = Path("PKG-INFO").read_text(encoding="utf-8")
    fields = email.parser.Parser().parsestr(text, headersonly=True)
    dist_info = f"{fields['Name'].replace('-', '_')}-{fields['Version']}.dist-info"
    (Path(directory) / dist_info).mkdir(parents=True)
    (Path(directory) / dist_info / "METADATA").write_text(text, encoding="utf-8")
    return dist_info

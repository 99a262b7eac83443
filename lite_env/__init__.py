"""lite-env: conda environments for JupyterLite's Pyodide kernel, shipped as a static site."""

from __future__ import annotations

__version__ = "0.1.0"

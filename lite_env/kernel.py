"""Facts about JupyterLite's Pyodide kernel (jupyterlite-pyodide-kernel 0.8.6) in one place:
its names, what it installs and imports as it starts, and what cannot enter a snapshot."""

from __future__ import annotations

from collections.abc import Sequence

#: The kernel's JupyterLab plugin: its settings in jupyter-lite.json point it at lite-env.
KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"
#: Names the kernel installs itself at start unless `loadPyodideOptions.packages` lists them.
KERNEL_BOOTSTRAP = ("micropip", "piplite", "ipykernel", "comm", "pyodide-kernel", "jedi", "ipython")
#: The conda packages an environment needs for the kernel to start with none of them
#: downloaded: the runtime and the bootstrap names (what a requirements.txt is added to).
KERNEL_PACKAGES = ("python 3.14.*", *KERNEL_BOOTSTRAP, "packaging")
#: The Pyodide kernel's own extension, and the Python distribution that ships it.
KERNEL_EXTENSION = "@jupyterlite/pyodide-kernel-extension"
KERNEL_DISTRIBUTION = "jupyterlite-pyodide-kernel"
#: lite-env's own extension (lite_env/labextension): a kernel per environment of a site of
#: several, made like the Pyodide kernel plugin's one; and its plugin, whose settings list them.
KERNELS_EXTENSION = "@lite-env/kernels"
KERNELS_PLUGIN = f"{KERNELS_EXTENSION}:kernels"


#: What JupyterLite's Pyodide kernel imports as it starts and runs its first cell (IPython
#: imports bdb as it runs each cell's code).
KERNEL_IMPORTS = (
    "piplite.piplite", "pyodide_kernel", "ipykernel", "comm", "IPython", "jedi", "bdb"
)  # fmt: skip
#: The kernel's modules that make its shell as they are imported (IPython's, with the working
#: directory of the moment; sys.stdout replaced): the kernel's own start imports them.
KERNEL_SHELL = frozenset({"pyodide_kernel", "ipykernel"})
#: What lite-env's loader imports as Python starts, before the kernel changes into /drive
#: (where each new top-level name is first looked up in the page's drive).
LOADER_IMPORTS = tuple(m for m in KERNEL_IMPORTS if m.split(".")[0] not in KERNEL_SHELL)
#: Top-level modules that hold JavaScript references once imported, or install hooks in them.
UNSNAPSHOTTABLE = frozenset(
    {"pyodide_kernel", "ipykernel", "piplite", "micropip", "js", "pyodide", "pyodide_js"}
)


def snapshot_modules(imported: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """The modules a snapshot should hold: those imported at start that it can hold, and extra."""
    return [m for m in (*imported, *extra) if m.split(".")[0] not in UNSNAPSHOTTABLE]

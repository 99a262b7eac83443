"""Import the modules a memory snapshot holds, inside Pyodide, just before it is taken.

Run by lite_env.snapshot under node. `main` prints a line for each module asked for:
`imported NAME`, or `failed NAME: ERROR` for one that could not be imported (a module that
needs the kernel around it: it is imported later, as usual, and the snapshot goes without).
"""

import importlib
import sys


def main(modules):
    """Import each module; report which are in the interpreter afterwards."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:
            print(f"failed {name}: {type(error).__name__}: {error}")
    for name in modules:
        if name in sys.modules:
            print(f"imported {name}")

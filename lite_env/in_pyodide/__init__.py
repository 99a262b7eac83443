"""Programs that run inside Pyodide: under node at build time, or in the browser's worker.

Each is a module with a `main` (lite_env.pyodide_node.program calls it); host Python can
import them (to lint and test them) without running anything.
"""

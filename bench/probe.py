"""Instrumented copies of the sites, for the profile of the kernel start (timestamps only).

A probe module becomes the kernel's `pyodideUrl`: it records when the worker evaluates it,
when `loadPyodide` is called and resolves, when Pyodide calls `fsInit`, and the start and end
of every `runPythonAsync`/`loadPackage` call the kernel makes; it sends them (epoch ms) and
the worker's resource timing to the bench server. lite-env's loader is copied with a few
marks added (image fetched and unpacked, image written). With `imports=True` a Python import
profiler (exec time per module, compile time) runs around the kernel's own Python code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lite_env.kernel import KERNEL_PLUGIN
from lite_env.site import LOADER_NAME

PROBE = "bench-probe.mjs"
PROBED_LOADER = "lite-env-probed.mjs"

#: (anchor in lite-env's lite-env.mjs, replacement): marks around the image.
LOADER_MARKS = (
    (
        "writeImage(FS, (await image.catch(() => ({ chunks: [] }))).chunks);",
        'globalThis.__benchMark?.("fsInit-called");'
        " const __benchChunks = (await image.catch(() => ({ chunks: [] }))).chunks;"
        ' globalThis.__benchMark?.("image-ready");'
        " writeImage(FS, __benchChunks);"
        ' globalThis.__benchMark?.("image-written");',
    ),
    (
        'const manifest = await (await fetchOk(manifestURL, "the environment manifest")).json();',
        'const manifest = await (await fetchOk(manifestURL, "the environment manifest")).json();'
        ' globalThis.__benchMark?.("manifest-parsed");',
    ),
)

IMPORT_PROFILER = r"""
import sys, time, zipimport, importlib._bootstrap_external as _be
_bench = {"records": [], "stack": [], "compile": [0.0, 0], "get_code": [0.0, 0]}
def _bench_wrap(original):
    def exec_module(self, module):
        started = time.perf_counter()
        _bench["stack"].append(0.0)
        try:
            return original(self, module)
        finally:
            elapsed = time.perf_counter() - started
            children = _bench["stack"].pop()
            if _bench["stack"]:
                _bench["stack"][-1] += elapsed
            _bench["records"].append((module.__name__, elapsed, elapsed - children))
    return exec_module
def _bench_count(original, key):
    def wrapped(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _bench[key][0] += time.perf_counter() - started
            _bench[key][1] += 1
    return wrapped
_be._LoaderBasics.exec_module = _bench_wrap(_be._LoaderBasics.exec_module)
zipimport.zipimporter.exec_module = _bench_wrap(zipimport.zipimporter.exec_module)
_be.SourceLoader.source_to_code = _bench_count(_be.SourceLoader.source_to_code, "compile")
_be.SourceLoader.get_code = _bench_count(_be.SourceLoader.get_code, "get_code")
_bench["zip_compile"] = [0.0, 0]
if hasattr(zipimport, "_compile_source"):
    zipimport._compile_source = _bench_count(zipimport._compile_source, "zip_compile")
"""

IMPORT_REPORT = r"""
import json as _json
def _bench_report():
    records = _bench["records"]
    top = {}
    for name, total, own in records:
        key = name.split(".")[0]
        top[key] = top.get(key, 0.0) + own
    return _json.dumps({
        "modules": len(records),
        "exec_self_s_by_package": dict(sorted(top.items(), key=lambda kv: -kv[1])[:25]),
        "slowest_self": sorted(([n, round(o, 4)] for n, t, o in records), key=lambda x: -x[1])[:25],
        "slowest_total": sorted(
            ([n, round(t, 4)] for n, t, o in records), key=lambda x: -x[1]
        )[:15],
        "compile_s": round(_bench["compile"][0], 4), "compiled_modules": _bench["compile"][1],
        "get_code_s": round(_bench["get_code"][0], 4), "get_code_calls": _bench["get_code"][1],
        "zip_compile_s": round(_bench["zip_compile"][0], 4),
        "zip_compiled_modules": _bench["zip_compile"][1],
    })
_bench_report()
"""


def probe_source(target: str, imports: bool) -> str:
    return f"""\
// bench probe: timestamps of the kernel start, sent to the bench server.
const marks = {{}};
const counts = {{}};
const now = () => performance.timeOrigin + performance.now();
globalThis.__benchMark = (name) => {{
  const n = (counts[name] = (counts[name] ?? 0) + 1);
  const key = n === 1 ? name : `${{name}}#${{n}}`;
  marks[key] = now();
  try {{ performance.mark(`bench:${{key}}`); }} catch (e) {{}}
}};
const send = (extra = {{}}) =>
  fetch("/__bench/marks", {{
    method: "POST", body: JSON.stringify({{ marks: {{ ...marks }}, ...extra }}),
  }})
    .catch(() => {{}});
globalThis.__benchMark("probe-evaluated");
const target = await import("./{target}");
globalThis.__benchMark("target-imported");
const IMPORTS = {json.dumps(imports)};
const PROFILER = {json.dumps(IMPORT_PROFILER)};
const REPORT = {json.dumps(IMPORT_REPORT)};

function label(method, argument) {{
  if (method === "loadPackage") return `loadPackage ${{JSON.stringify(argument)}}`;
  const lines = String(argument).split("\\n").map((l) => l.trim()).filter(Boolean);
  if (lines.some((l) => l.startsWith("import pyodide_kernel"))) {{
    return "runPythonAsync kernel (installs + import pyodide_kernel)";
  }}
  return `runPythonAsync ${{(lines[0] ?? "").slice(0, 60)}}`;
}}

function resources() {{
  return performance.getEntriesByType("resource").map((e) => ({{
    name: e.name, start: performance.timeOrigin + e.startTime,
    end: performance.timeOrigin + e.responseEnd, size: e.encodedBodySize,
  }}));
}}

export async function loadPyodide(options = {{}}) {{
  globalThis.__benchMark("loadPyodide-called");
  const userFsInit = options.fsInit;
  const pyodide = await target.loadPyodide({{
    ...options,
    fsInit: async (FS, info) => {{
      globalThis.__benchMark("fsInit-probe");
      if (userFsInit) await userFsInit(FS, info);
    }},
  }});
  globalThis.__benchMark("loadPyodide-resolved");
  send({{ resources: resources() }});
  let profiling = false;
  const wrap = (method) => {{
    const original = pyodide[method];
    return async (...args) => {{
      const name = label(method, args[0]);
      if (IMPORTS && !profiling) {{
        profiling = true;
        pyodide.runPython(PROFILER);
      }}
      globalThis.__benchMark(`${{name}}:start`);
      try {{
        return await original.apply(pyodide, args);
      }} finally {{
        globalThis.__benchMark(`${{name}}:end`);
        const extra = {{ resources: resources() }};
        if (IMPORTS && name.includes("pyodide_kernel")) {{
          try {{
            extra.imports = JSON.parse(pyodide.runPython(REPORT));
          }} catch (e) {{
            extra.imports_error = String(e);
          }}
        }}
        send(extra);
      }}
    }};
  }};
  const wrapped = {{ runPythonAsync: wrap("runPythonAsync"), loadPackage: wrap("loadPackage") }};
  try {{
    Object.assign(pyodide, wrapped);
  }} catch (e) {{}}
  const inPlace = pyodide.runPythonAsync === wrapped.runPythonAsync;
  if (inPlace && pyodide.loadPackage === wrapped.loadPackage) {{
    globalThis.__benchMark("wrapped-in-place");
    return pyodide;
  }}
  globalThis.__benchMark("wrapped-by-proxy");
  return new Proxy(pyodide, {{
    get(object, property) {{
      if (Object.hasOwn(wrapped, property)) return wrapped[property];
      const value = Reflect.get(object, property, object);
      return typeof value === "function" ? value.bind(object) : value;
    }},
  }});
}}
"""


def make_probed_site(source: Path, out: Path, *, imports: bool = False) -> list[str]:
    """Copy `source` to `out` with the probe as pyodideUrl; return notes (missing anchors)."""
    notes = []
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(source, out, symlinks=True)
    config_path = out / "jupyter-lite.json"
    config = json.loads(config_path.read_text())
    kernel = config["jupyter-config-data"]["litePluginSettings"][KERNEL_PLUGIN]
    pyodide_dir = out / "static" / "pyodide"
    target = kernel["pyodideUrl"].rsplit("/", 1)[-1]
    if target == LOADER_NAME:
        text = (pyodide_dir / LOADER_NAME).read_text()
        for anchor, replacement in LOADER_MARKS:
            if anchor in text:
                text = text.replace(anchor, replacement, 1)
            else:
                notes.append(f"loader anchor not found, mark missing: {anchor[:50]}")
        (pyodide_dir / PROBED_LOADER).write_text(text)
        target = PROBED_LOADER
    (pyodide_dir / PROBE).write_text(probe_source(target, imports))
    kernel["pyodideUrl"] = f"./static/pyodide/{PROBE}"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return notes

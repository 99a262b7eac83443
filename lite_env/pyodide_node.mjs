// Run Python code in Pyodide under node, with a host site-packages folder copied in first.
//
//   node pyodide_node.mjs RUNTIME_DIR [SITE_PACKAGES_DIR] [--mount HOST:GUEST]...
//                         [--loader OPTIONS_JSON] < code.py
//
// RUNTIME_DIR holds Pyodide's core files (pyodide.mjs, pyodide.asm.wasm, python_stdlib.zip...).
// SITE_PACKAGES_DIR is copied into Pyodide's site-packages (/lib/python3.14/site-packages)
// before the interpreter starts; each --mount puts a host folder at a path of Pyodide's file
// system (NODEFS: writes there land on the host). --loader boots through lite-env's loader
// (lite-env.mjs beside pyodide.mjs) with these loadPyodide options, so the environment comes
// from an image. The code runs as __main__; its output goes to stdout/stderr. --snapshot OUT
// runs the code, then writes a memory snapshot of the interpreter to OUT.
// Exit status: 0, a SystemExit's status, 1 after an uncaught exception (traceback on stderr),
// 2 when Pyodide cannot start. Nothing is fetched from the network: no packages are loaded.

import { lstatSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

// Runs the code like `python -` does; returns the exit status. runPythonAsync is not used:
// a SystemExit raised in its event loop escapes as an unhandled rejection.
const DRIVER = `
def _run(source):
    import linecache, sys, traceback
    linecache.cache["<stdin>"] = (len(source), None, source.splitlines(True), "<stdin>")
    status = 0
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(source, "<stdin>", "exec"), namespace)
    except SystemExit as error:
        if error.code is None or isinstance(error.code, int):
            status = error.code or 0
        else:
            print(error.code, file=sys.stderr)
            status = 1
    except BaseException as error:
        traceback.print_exception(type(error), error, error.__traceback__.tb_next)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return status
_run
`;

/** Copy a host folder into the Emscripten FS (files, folders, symlinks). */
function copyTree(FS, hostDir, fsDir) {
  FS.mkdirTree(fsDir);
  for (const entry of readdirSync(hostDir, { withFileTypes: true })) {
    const host = join(hostDir, entry.name);
    const target = `${fsDir}/${entry.name}`;
    if (entry.isSymbolicLink()) {
      FS.symlink(readlinkSync(host), target);
    } else if (entry.isDirectory()) {
      copyTree(FS, host, target);
    } else {
      FS.writeFile(target, readFileSync(host), { mode: lstatSync(host).mode & 0o777 });
    }
  }
}

/** A stdout/stderr handler that passes Python's bytes through unchanged. */
function rawWriter(stream) {
  return { write: (buffer) => (stream.write(Buffer.from(buffer)), buffer.length) };
}

/** Parse `RUNTIME_DIR [SITE_PACKAGES_DIR] [--mount HOST:GUEST]... [--loader OPTIONS_JSON]
 * [--snapshot OUT]`. */
function parseArgs(argv) {
  const args = { runtimeDir: null, sitePackages: null, mounts: [], loader: null, snapshot: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--snapshot") {
      args.snapshot = resolve(argv[++i]);
    } else if (argv[i] === "--mount") {
      const [host, guest] = argv[++i].split(":");
      args.mounts.push([resolve(host), guest]);
    } else if (argv[i] === "--loader") {
      args.loader = JSON.parse(argv[++i]);
    } else if (args.runtimeDir === null) {
      args.runtimeDir = resolve(argv[i]);
    } else if (args.sitePackages === null) {
      args.sitePackages = resolve(argv[i]);
    } else {
      return null;
    }
  }
  return args.runtimeDir === null ? null : args;
}

async function main(argv) {
  const args = parseArgs(argv);
  if (args === null) {
    process.stderr.write(
      "usage: node pyodide_node.mjs RUNTIME_DIR [SITE_PACKAGES_DIR] [--mount HOST:GUEST]..." +
        " [--loader OPTIONS_JSON] < code.py\n",
    );
    return 2;
  }
  const { runtimeDir, sitePackages, mounts, loader, snapshot } = args;
  const code = readFileSync(0, "utf8");
  // --loader boots through lite-env's loader (beside pyodide.mjs) with the given options
  const module = loader ? "lite-env.mjs" : "pyodide.mjs";
  let pyodide;
  try {
    const { loadPyodide } = await import(pathToFileURL(join(runtimeDir, module)).href);
    pyodide = await loadPyodide({
      ...(loader ?? {}),
      ...(snapshot ? { _makeSnapshot: true } : {}),
      indexURL: `${runtimeDir}/`,
      fsInit: async (FS, info) => {
        if (sitePackages) copyTree(FS, sitePackages, info.sitePackages);
        for (const [host, guest] of mounts) {
          FS.mkdirTree(guest);
          FS.mount(FS.filesystems.NODEFS, { root: host }, guest);
        }
      },
    });
  } catch (error) {
    // exit at once: a runtime still booting in the background would reset the exit status
    const message = `cannot start Pyodide from ${runtimeDir}: ${error?.stack ?? error}\n`;
    await new Promise((done) => process.stderr.write(message, done));
    process.exit(2);
  }
  if (snapshot) return makeSnapshot(pyodide, code, snapshot);
  pyodide.setStdout(rawWriter(process.stdout));
  pyodide.setStderr(rawWriter(process.stderr));
  const run = pyodide.runPython(DRIVER);
  try {
    return run(code);
  } finally {
    run.destroy();
  }
}

/** Run the code, then save a memory snapshot of the interpreter to `out`. Nothing that holds
 * a JS reference may stay alive (no stdout handler, no driver function), and the record of
 * loaded packages must be empty: the snapshot serializer refuses anything else. */
function makeSnapshot(pyodide, code, out) {
  try {
    pyodide.runPython(code);
  } catch (error) {
    process.stderr.write(`${error?.message ?? error}\n`);
    return 1;
  }
  for (const name of Object.keys(pyodide.loadedPackages)) delete pyodide.loadedPackages[name];
  writeFileSync(out, pyodide.makeMemorySnapshot());
  return 0;
}

// Errors that escape Pyodide's own promises (a package that fails to load): report the stack
// alone, since node's default report prints a whole line of the minified runtime first.
process.on("unhandledRejection", (error) => {
  process.stderr.write(`Pyodide failed: ${error?.stack ?? error}\n`, () => process.exit(2));
});

process.exitCode = await main(process.argv.slice(2));

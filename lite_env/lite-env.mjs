// lite-env loader: Pyodide's `loadPyodide`, with a lite-env environment image written into the
// file system before Python starts.
//
// It lives beside pyodide.mjs; JupyterLite's Pyodide kernel imports it through `pyodideUrl`.
// Its options (in the kernel's `loadPyodideOptions`):
//   liteEnvManifestURL  the image manifest (image-<sha>.json); chunks are found beside it.
//   liteEnvProvides     package names the image provides: removed from `packages`, so Pyodide
//                       does not look them up while the kernel skips its own installs of them.
//   liteEnvSnapshotURL, liteEnvSnapshotSha256
//                       a gzipped memory snapshot made at build time: restored instead of a
//                       cold boot (the image still fills the file system); on any failure the
//                       start falls back to a cold boot with a console warning.
//   liteEnvPrefetch     false: lazy chunks are fetched only when imported (default: true,
//                       fetched in the background from 2 s after the kernel has its Python)
//   liteEnvCondaURL, liteEnvChannelURL, liteEnvInstalledURL, liteEnvSolverURL
//                       `%conda install` in the kernel (conda.mjs) from the site's channel
//                       (or a hosted one), with the environment's installed set and solver.
//   liteEnvImports      modules the kernel imports as it starts, imported here first: the
//                       kernel imports them with /drive as its working directory, where the
//                       path finder asks the page for every new top-level name ('' is on
//                       sys.path); from the home folder they are found in the image at once.
// `startEarly` boots Python with the kernel's options before the kernel asks for it (from the
// worker a site's page creates as it loads, lite_env/early_start.py); the kernel's own
// `loadPyodide` call then gets that Python if it asks with the same options.
// Every chunk is fetched at once, in parallel with the runtime's boot, checked against the
// manifest's sha256, gunzipped with the platform's DecompressionStream and written in fsInit.
// A missing or corrupt chunk fails the start with a message that names it.
// Chunks the manifest marks lazy (packages the kernel's start does not import) are left out
// of the start where synchronous requests exist (browser workers): a finder at the head of
// sys.meta_path writes a lazy chunk on the first import of one of its modules (their dist-info
// folders come at start, in a chunk of their own). The chunks are fetched in the background
// after the start (low priority, one at a time) and written as they come; an import that comes
// first starts its chunk's fetch or joins the one under way, so each chunk is fetched once.
import { loadPyodide as loadPyodideRuntime } from "./pyodide.mjs";

export * from "./pyodide.mjs";

const FORMAT = "lite-env-image/1";

/** Prefetching lazy chunks waits this long after the kernel has its Python: the kernel's
 * start and its first cell have the network and the CPU first. */
const PREFETCH_DELAY_MS = 2000;

let early = null; // the boot startEarly began: { key, booting }

/** Boot the kernel's Python before the kernel asks for it (lite_env/early_start.py), with the
 * options the kernel's `loadPyodide` call will pass: JupyterLite's Pyodide kernel plugins
 * resolve URL options against the site's root, and the runtime's folder is the loader's. */
export function startEarly(loaderURL, siteRoot, loadPyodideOptions) {
  const options = { indexURL: new URL(".", loaderURL).href };
  for (const [key, value] of Object.entries(loadPyodideOptions)) {
    const url = key.endsWith("URL") && typeof value === "string";
    options[key] = url ? new URL(value, siteRoot).href : value;
  }
  const booting = boot(options);
  booting.catch(() => {}); // reported by the kernel's own call, which gets this promise
  early = { key: optionsKey(options), booting };
}

export async function loadPyodide(options = {}) {
  if (!options.liteEnvManifestURL) {
    return loadPyodideRuntime(options);
  }
  let booting;
  if (early?.key === optionsKey(options)) {
    ({ booting } = early);
  } else {
    booting = boot(options); // no early start, or one with other settings
  }
  early = null;
  const { pyodide, prefetch } = await booting;
  if (options.stdout) pyodide.setStdout({ batched: options.stdout });
  if (options.stderr) pyodide.setStderr({ batched: options.stderr });
  if (prefetch) setTimeout(prefetch, PREFETCH_DELAY_MS);
  return pyodide;
}

/** Options as a string that compares equal for equal options (callbacks left out). */
function optionsKey(options) {
  const entries = Object.entries(options).filter(([, value]) => typeof value !== "function");
  return JSON.stringify(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Boot Python with the image; resolve to { pyodide, prefetch } where prefetch, if any,
 * starts fetching the lazy chunks in the background. */
async function boot(options) {
  const { liteEnvManifestURL, liteEnvProvides = [], ...rest } = options;
  const { liteEnvSnapshotURL, liteEnvSnapshotSha256, ...more } = rest;
  const { liteEnvCondaURL, liteEnvChannelURL, ...conda } = more;
  const { liteEnvInstalledURL, liteEnvSolverURL, ...others } = conda;
  const { liteEnvImports = [], liteEnvPrefetch = true, ...runtimeOptions } = others;
  const manifestURL = new URL(liteEnvManifestURL, import.meta.url);
  const image = fetchImage(manifestURL, typeof XMLHttpRequest !== "undefined");
  const provided = new Set(liteEnvProvides);
  const userFsInit = runtimeOptions.fsInit;
  const bootOptions = {
    ...runtimeOptions,
    packages: (runtimeOptions.packages ?? []).filter((name) => !provided.has(name)),
    fsInit: async (FS, info) => {
      writeImage(FS, (await image.catch(() => ({ chunks: [] }))).chunks);
      if (userFsInit) await userFsInit(FS, info);
    },
  };
  const pyodide = liteEnvSnapshotURL
    ? restore(bootOptions, new URL(liteEnvSnapshotURL, import.meta.url), liteEnvSnapshotSha256)
    : loadPyodideRuntime(bootOptions);
  // A missing or corrupt chunk fails the start here, with its message: an error thrown
  // inside fsInit would leave the kernel hanging with no word.
  const { later } = await image;
  const started = await pyodide;
  // Pyodide counts the image's packages as loaded by their PYODIDE_SOURCE marks at a cold
  // start, but not after a snapshot restore: without this, the kernel's per-cell import hook
  // would try to install them again.
  for (const name of provided) started.loadedPackages[name] ??= "lite-env image";
  const prefetch = later.length > 0 ? deferChunks(started, manifestURL, later) : null;
  importModules(started, liteEnvImports);
  if (liteEnvCondaURL) {
    const conda = await import(new URL(liteEnvCondaURL, import.meta.url).href);
    conda.setup(started, liteEnvChannelURL, liteEnvInstalledURL, liteEnvSolverURL);
  }
  return { pyodide: started, prefetch: liteEnvPrefetch ? prefetch : null };
}

/** Install the finder that writes a lazy chunk on the first import of one of its modules;
 * return the prefetch: a function that fetches the lazy chunks in the background, one at a
 * time at low priority, so that an import usually finds its chunk written instead of waiting
 * on the network. Each chunk is fetched once: whoever comes first, the prefetch or an import,
 * starts its fetch, and the other waits for that one (an import waits through JSPI; where it
 * cannot, it fetches synchronously). */
function deferChunks(pyodide, manifestURL, chunks) {
  const byFile = new Map(chunks.map((chunk) => [chunk.file, chunk]));
  const state = new Map(); // file → its fetch's promise while it runs, then true once written
  const write = (file, bytes) => {
    if (state.get(file) === true) return; // a synchronous import wrote it meanwhile
    const chunk = byFile.get(file);
    if (bytes.length !== chunk.raw_size) {
      throw new Error(`lite-env: chunk ${file} unpacks to the wrong size`);
    }
    writeImage(pyodide.FS, [{ chunk, bytes }]);
    state.set(file, true);
  };
  const load = (file, init) => {
    if (!state.has(file)) {
      const fetching = fetchChunk(manifestURL, byFile.get(file), init)
        .then((bytes) => write(file, bytes))
        .catch((error) => {
          if (state.get(file) === fetching) state.delete(file); // the next import tries again
          throw error;
        });
      state.set(file, fetching);
    }
    return Promise.resolve(state.get(file));
  };
  pyodide.registerJsModule("_lite_env_lazy", {
    chunks: () => chunks.map((c) => [c.file, new URL(c.file, manifestURL).href, c.sha256, c.lazy]),
    written: (file) => state.get(file) === true,
    load: (file) => load(file),
    fetch: (url) => fetchSync(url),
    write,
  });
  pyodide.runPython(LAZY_FINDER);
  return async () => {
    for (const chunk of chunks) {
      // a failure is left to the import that needs the chunk, which reports it
      await load(chunk.file, { priority: "low" }).catch(() => {});
    }
  };
}

/** A synchronous GET (allowed in workers) of a file's bytes. */
function fetchSync(url) {
  const request = new XMLHttpRequest();
  request.open("GET", url, false);
  request.responseType = "arraybuffer";
  request.send();
  if (request.status !== 200) {
    throw new Error(`lite-env: cannot fetch ${url}: HTTP ${request.status}`);
  }
  return new Uint8Array(request.response);
}

// The finder's state is safe to leave in a running kernel: it holds names and URLs, and a
// chunk is written once (checked against the manifest's sha256 like every other chunk).
// lite_env/in_pyodide/lazy_finder.py, put here by the site build (lite_env.site.loader_source).
const LAZY_FINDER = "@lazy_finder@";

/** Import the modules (a restored snapshot holds them already); the kernel reports failures. */
function importModules(pyodide, names) {
  if (names.length === 0) return;
  pyodide.runPython(
    "import importlib\n" +
      `for name in ${JSON.stringify(names)}:\n` +
      "    try:\n        importlib.import_module(name)\n    except Exception:\n        pass\n",
  );
}

/** Restore the snapshot (fetched while the runtime downloads); boot cold if that fails. */
async function restore(bootOptions, snapshotURL, sha256) {
  const snapshot = fetchBytes(snapshotURL, "the memory snapshot", sha256).then(gunzip);
  snapshot.catch(() => {}); // reported below, where the start falls back
  try {
    const { default: createModule } = await import("./pyodide.asm.mjs");
    const pyodide = await loadPyodideRuntime({
      ...bootOptions,
      _loadSnapshot: snapshot,
      // Pyodide 314 starts with a 30 MiB heap and cannot restore a larger snapshot into it
      createPyodideModule: async (settings) => {
        const module = await createModule(settings);
        const bytes = await snapshot;
        if (module.HEAP8.length < bytes.length) module.growMemory(bytes.length);
        return module;
      },
    });
    // the snapshot froze the random state of the build: every page load would repeat it
    pyodide.runPython("import random; random.seed()");
    return pyodide;
  } catch (error) {
    console.warn(`lite-env: cannot restore ${snapshotURL} (${error}); starting cold`);
    return loadPyodideRuntime(bootOptions);
  }
}

/** Fetch the manifest, then every chunk needed at start at once; resolve to
 * {chunks: [{chunk, bytes}], later: [chunk]} (the lazy chunks, when `lazily`). */
async function fetchImage(manifestURL, lazily) {
  const manifest = await (await fetchOk(manifestURL, "the environment manifest")).json();
  if (manifest.format !== FORMAT) {
    throw new Error(`lite-env: ${manifestURL} is not a ${FORMAT} manifest`);
  }
  const later = lazily ? manifest.chunks.filter((chunk) => chunk.lazy?.length > 0) : [];
  const now = manifest.chunks.filter((chunk) => !later.includes(chunk));
  const chunks = await Promise.all(
    now.map(async (chunk) => ({ chunk, bytes: await fetchChunk(manifestURL, chunk) })),
  );
  return { chunks, later };
}

async function fetchChunk(manifestURL, chunk, init = {}) {
  const url = new URL(chunk.file, manifestURL);
  const what = `chunk ${chunk.file} of package ${chunk.package}`;
  const bytes = await gunzip(await fetchBytes(url, what, chunk.sha256, init));
  if (bytes.length !== chunk.raw_size) {
    throw new Error(`lite-env: ${what} unpacks to the wrong size`);
  }
  return bytes;
}

/** Fetch a file and check its sha256; the error names `what`. */
async function fetchBytes(url, what, sha256, init = {}) {
  const response = await fetchOk(url, what, init);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const digest = hex(await crypto.subtle.digest("SHA-256", bytes));
  if (digest !== sha256) {
    throw new Error(
      `lite-env: ${what} is corrupt (sha256 ${digest}, expected ${sha256});` +
        " rebuild or redeploy the site",
    );
  }
  return bytes;
}

async function gunzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function fetchOk(url, what, init = {}) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new Error(`lite-env: cannot fetch ${what} from ${url}: ${error}`);
  }
  if (!response.ok) {
    throw new Error(`lite-env: cannot fetch ${what} from ${url}: HTTP ${response.status}`);
  }
  return response;
}

/** Write every chunk's files and symlinks under the prefix `/`; make shared libraries findable. */
function writeImage(FS, chunks) {
  const made = new Set();
  const mkdirs = (path) => {
    const folder = path.slice(0, path.lastIndexOf("/"));
    if (folder && !made.has(folder)) {
      FS.mkdirTree(folder);
      made.add(folder);
    }
  };
  for (const { chunk, bytes } of chunks) {
    for (const [path, offset, size, mode] of chunk.files) {
      const target = `/${path}`;
      mkdirs(target);
      FS.writeFile(target, bytes.subarray(offset, offset + size), { canOwn: true });
      if (mode !== 0o644) FS.chmod(target, mode);
    }
    for (const [path, linkTarget] of chunk.symlinks) {
      mkdirs(`/${path}`);
      FS.symlink(linkTarget, `/${path}`);
    }
    // conda puts shared libraries in $PREFIX/lib, which is not on Pyodide's library path
    for (const path of chunk.dynlibs) {
      if (!path.startsWith("lib/") || path.includes("/site-packages/")) continue;
      const link = `/usr/lib/${path.slice(path.lastIndexOf("/") + 1)}`;
      mkdirs(link);
      if (!FS.analyzePath(link).exists) FS.symlink(`/${path}`, link);
    }
  }
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

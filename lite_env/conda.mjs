// lite-env's `%conda install` in the kernel: the JavaScript half (the Python half is
// lite_env/in_pyodide/conda_magic.py, written into site-packages as `_lite_env_conda`).
//
// The loader (lite-env.mjs) calls `setup` once Pyodide has started, when the site carries its
// channel (`lite-env build --channel-in-site`). It writes the Python modules below into
// site-packages, gives Python the JS module `_lite_env_conda_js` (the solver and the site's
// channel) and hooks `%conda` into the kernel's IPython shell. mambajs (the environment's, from
// its channel's own `mambajs` package, at solverURL) is imported at the first solve only. Every request goes
// to the site's own channel, or to the one hosted channel the site names.

// {path under site-packages: source}: conda_magic.py as _lite_env_conda.py and the lite_env
// and conda_package_streaming modules it imports (put here by lite_env.site).
const PYTHON = "@python@";
const PLATFORM = "emscripten-wasm32";

export function setup(pyodide, channelURL, installedURL, solverURL) {
  // without its trailing slash, as mambajs names channels
  const channel = new URL(channelURL, import.meta.url).href.replace(/\/+$/, "");
  const sitePackages = pyodide.runPython("import sysconfig; sysconfig.get_path('purelib')");
  for (const [path, source] of Object.entries(PYTHON)) {
    const target = `${sitePackages}/${path}`;
    pyodide.FS.mkdirTree(target.slice(0, target.lastIndexOf("/")));
    pyodide.FS.writeFile(target, source);
  }
  pyodide.registerJsModule("_lite_env_conda_js", {
    solve: async (specs, installed) =>
      JSON.stringify(
        await solve(solverURL, channel, JSON.parse(specs), JSON.parse(installed)),
      ),
    fetchBytes: async (path) => fetchBytes(`${channel}/${path}`),
    fetchInstalled: async () => fetchBytes(new URL(installedURL, import.meta.url).href),
    channel,
  });
  pyodide.runPython("import _lite_env_conda; _lite_env_conda.hook()");
}

let mambajs = null;

/** The packages (by file name) of the environment that holds the installed packages and
 * meets `specs`, solved by mambajs over the site's channel; the installed packages are its
 * locked packages, so the solver keeps them unless it must move them. Throws the solver's
 * explanation. */
export async function solve(solverURL, channel, specs, installed) {
  mambajs ??= await import(new URL(solverURL, import.meta.url).href);
  const packages = {};
  for (const p of installed) {
    packages[p.file] = {
      name: p.name,
      version: p.version,
      build: p.build,
      subdir: p.subdir,
      channel,
      ...(p.sha256 ? { hash: { sha256: p.sha256 } } : {}),
    };
  }
  const lock = {
    lockVersion: "1.0.4",
    platform: PLATFORM,
    specs: [],
    channels: [channel],
    channelInfo: { [channel]: [{ url: channel, protocol: "https" }] },
    packages,
    pipPackages: {},
  };
  const names = installed.map((p) => p.name);
  const solved = await mambajs.solve({ ymlOrSpecs: [...names, ...specs], currentLock: lock });
  return solved.packages;
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

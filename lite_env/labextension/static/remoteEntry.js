// lite-env's kernels: one Pyodide kernel per environment of a site built from several, and
// the default kernel started with the page.
//
// A prebuilt JupyterLab extension written by hand (no bundler): a module federation container
// as JupyterLite loads one (`init` with the shared scope, then `get("./extension")`). Its one
// plugin takes the kernels from its settings in jupyter-lite.json and registers each with
// JupyterLite's kernel specs, made like the Pyodide kernel's own plugin (jupyterlite-pyodide-
// kernel 0.8.6) makes its one kernel, which a site with several environments disables. The
// classes and tokens come from the shared scope: the same objects every other plugin sees.
// A page that started the default kernel's worker as it loaded (lite_env/early_start.py) left
// it in `self.liteEnvEarlyKernel` with the kernel's settings: the page's first Pyodide kernel
// (from this plugin or the Pyodide kernel's own) takes it instead of a new worker if it has
// those settings.
(() => {
  const NAME = "@lite-env/kernels";
  const PLUGIN_ID = `${NAME}:kernels`;
  let shared = null;

  /** The newest version of a shared package in the scope that `accepts`, as its module. */
  async function use(key, accepts = () => true) {
    const versions = Object.keys(shared?.[key] ?? {}).filter(accepts);
    if (versions.length === 0) {
      throw new Error(`${NAME}: the page shares no ${key} that lite-env can use`);
    }
    const newest = versions.sort(compareVersions).at(-1);
    const factory = await shared[key][newest].get();
    return factory();
  }

  /** The Pyodide kernel's classes: the version its own plugin uses (it asks for ^0.8.6). */
  function usePyodideKernel() {
    const accepts = (v) => compareVersions(v, "0.8.6") >= 0 && compareVersions(v, "0.9.0") < 0;
    return use("@jupyterlite/pyodide-kernel", accepts);
  }

  /** A kernel's loadPyodide options with their URLs resolved against the site's root, as
   * the Pyodide kernel's own plugin resolves them. */
  function resolveOptions(options, resolve) {
    const resolved = { ...(options ?? {}) };
    for (const [key, value] of Object.entries(resolved)) {
      if (key.endsWith("URL") && typeof value === "string") resolved[key] = resolve(value);
    }
    return resolved;
  }

  /** Options as a string that compares equal for equal options. */
  function optionsKey(options) {
    const entries = Object.entries(options);
    return JSON.stringify(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  function compareVersions(a, b) {
    const parts = (v) => v.split(/[.+-]/).map((p) => Number.parseInt(p, 10) || 0);
    const [x, y] = [parts(a), parts(b)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    }
    return 0;
  }

  /** Let the page's first Pyodide kernel take the worker the page started for it, if the
   * kernel has the settings that worker started with; otherwise the worker is stopped (only
   * the first kernel may take it, and a Python no kernel will use should not stay). */
  function adoptEarlyWorker(PyodideKernel, resolve) {
    const stock = PyodideKernel.prototype.initWorker;
    if (stock.liteEnv) return;
    const key = ({ pyodideUrl, loadPyodideOptions }) =>
      optionsKey({ pyodideUrl, ...loadPyodideOptions });
    PyodideKernel.prototype.initWorker = Object.assign(
      function initWorker(options) {
        const early = self.liteEnvEarlyKernel;
        if (early?.worker) {
          const { worker, settings } = early;
          early.worker = null;
          const wanted = {
            pyodideUrl: resolve(settings.pyodideUrl),
            loadPyodideOptions: resolveOptions(settings.loadPyodideOptions, resolve),
          };
          if (!crossOriginIsolated && key(wanted) === key(options)) {
            early.adopted = true;
            return worker;
          }
          worker.terminate();
        }
        return stock.call(this, options);
      },
      { liteEnv: true },
    );
  }

  async function plugin() {
    const [services, apputils, logconsole, coreutils, pyodideKernel] = await Promise.all([
      use("@jupyterlite/services"),
      use("@jupyterlite/apputils"),
      use("@jupyterlab/logconsole"),
      use("@jupyterlab/coreutils"),
      usePyodideKernel(),
    ]);
    const { PageConfig } = coreutils;
    // URLs are relative to the site's root: JupyterLite resolves the ones at the top of a
    // plugin's settings, not those inside its list of kernels or its options
    const resolve = (url) => new URL(url, PageConfig.getBaseUrl()).href;
    adoptEarlyWorker(pyodideKernel.PyodideKernel, resolve);
    return {
      id: PLUGIN_ID,
      description: "One Pyodide kernel per lite-env environment; the default one starts with the page.",
      autoStart: true,
      requires: [services.IKernelSpecs],
      optional: [apputils.IServiceWorkerManager, logconsole.ILoggerRegistry],
      activate: (app, kernelspecs, serviceWorker, loggers) => {
        const settings = JSON.parse(PageConfig.getOption("litePluginSettings") || "{}");
        const { kernels = [] } = settings[PLUGIN_ID] ?? {};
        const { contents, sessions } = app.serviceManager;
        const logger = async ({ payload, kernelId }) => {
          if (!loggers) return;
          let path = "";
          for (const session of sessions.running()) {
            if (session.kernel?.id === kernelId) path = session.path;
          }
          loggers.getLogger(path).log(payload);
        };
        for (const kernel of kernels) {
          const loadPyodideOptions = resolveOptions(kernel.loadPyodideOptions, resolve);
          kernelspecs.register({
            spec: {
              name: kernel.name,
              display_name: kernel.display_name,
              language: "python",
              argv: [],
              resources: kernel.resources ?? {},
            },
            create: async (options) => {
              const { PyodideKernel } = pyodideKernel;
              const mountDrive = !!(serviceWorker?.enabled || crossOriginIsolated);
              return new PyodideKernel({
                ...options,
                pyodideUrl: resolve(kernel.pyodideUrl),
                pipliteWheelUrl: kernel.pipliteWheelUrl ? resolve(kernel.pipliteWheelUrl) : undefined,
                pipliteUrls: (kernel.pipliteUrls ?? []).map(resolve),
                disablePyPIFallback: !!kernel.disablePyPIFallback,
                mountDrive,
                loadPyodideOptions,
                contentsManager: contents,
                browsingContextId: serviceWorker?.browsingContextId,
                logger,
              });
            },
          });
        }
      },
    };
  }

  const containers = (self._JUPYTERLAB = self._JUPYTERLAB || {});
  containers[NAME] = {
    init: (scope) => {
      shared = scope;
    },
    get: async (module) => {
      if (module !== "./extension") throw new Error(`${NAME}: no module ${module}`);
      const made = await plugin();
      return () => ({ __esModule: true, default: [made] });
    },
  };
})();

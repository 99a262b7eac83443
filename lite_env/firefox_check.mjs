// lite-env check's Firefox driver: lite_env.firefox_check runs it with node and reads one JSON
// result from its standard output.
//
// It reads its task as JSON on standard input: {npm_prefix, firefox, url, launcher, idle, cells,
// timeout_s, grace_s, screenshot}: the folder npm installed puppeteer-core into, the browser,
// the lab's URL, the kernel's launcher card (a CSS selector), the idle test (a function's
// source), the cells to run, where to save a PNG at the end (or null). It opens the page in
// headless Firefox (WebDriver BiDi), clicks the launcher card, waits until the idle test holds,
// then runs each cell and reports {idle_s, cells: [{output, seconds}], requests, responses:
// [{url, length, encoding}], console, uncaught, error}. What to import, how to read the outputs
// and what counts as a failure is the Python side's.

const task = JSON.parse(await readStdin());
const { createRequire } = await import("node:module");
const { launch } = createRequire(`${task.npm_prefix}/package.json`)("puppeteer-core");
const result = { idle_s: null, cells: [], requests: [], responses: [], console: [], uncaught: [] };
let started = performance.now(); // then from the navigation on, as in the Chromium check
const seconds = (since) => (performance.now() - since) / 1000;
let browser;
try {
  browser = await launch({
    browser: "firefox",
    executablePath: task.firefox,
    headless: true,
    protocolTimeout: task.timeout_s * 1000,
  });
  const page = await browser.newPage();
  record(page);
  started = performance.now();
  await page.goto(task.url, { timeout: task.timeout_s * 1000 });
  await (await page.waitForSelector(task.launcher, { timeout: task.timeout_s * 1000 })).click();
  result.idle_s = await waitIdle(page);
  if (result.idle_s !== null) {
    for (const code of task.cells) {
      result.cells.push(await runCell(page, code));
      if (result.cells.at(-1).output === null) break; // timed out
    }
  }
  if (task.screenshot) await page.screenshot({ path: task.screenshot });
} catch (error) {
  result.error = String(error.message ?? error).split("\n")[0];
} finally {
  await browser?.close().catch(() => {});
}
process.stdout.write(JSON.stringify(result));

/** Record the page's (and its workers') requests, responses, console and uncaught errors. */
function record(page) {
  page.on("request", (request) => result.requests.push(request.url()));
  page.on("response", (response) => {
    const headers = response.headers();
    result.responses.push({
      url: response.url(),
      length: Number(headers["content-length"] ?? 0),
      encoding: headers["content-encoding"] ?? "",
    });
  });
  page.on("console", (message) => {
    const where = message.location()?.url;
    result.console.push(`${message.type()}: ${message.text()}${where ? ` (${where})` : ""}`);
  });
  page.on("pageerror", (error) => {
    result.uncaught.push({ s: seconds(started), text: String(error.message ?? error) });
  });
}

/** Seconds from the start to the first time the idle test holds; null once the timeout has
 * passed, or the grace time after an uncaught error. */
async function waitIdle(page) {
  const idle = `(${task.idle})()`;
  while (seconds(started) < task.timeout_s) {
    if (await page.evaluate(idle)) return seconds(started);
    const first = result.uncaught[0];
    if (first && seconds(started) - first.s > task.grace_s) return null;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return null;
}

/** Put `code` into the notebook's last cell, run it,
 * and return its output text and the seconds from Shift+Enter to its prompt's number. */
async function runCell(page, code) {
  const cells = await page.$$(".jp-Notebook .jp-Cell");
  const cell = cells[cells.length - 1]; // running a cell appends a new one
  const editor = await cell.$(".cm-content");
  await editor.click();
  await page.keyboard.down("Control");
  await page.keyboard.press("a");
  await page.keyboard.up("Control");
  // as typed at once, past the editor's auto-indent and closing brackets
  await editor.evaluate((_, text) => document.execCommand("insertText", false, text), code);
  await page.keyboard.down("Shift");
  const sent = performance.now();
  await page.keyboard.press("Enter");
  await page.keyboard.up("Shift");
  const prompt = await cell.$(".jp-InputArea-prompt");
  while (!/^\[\d+\]:$/.test((await prompt.evaluate((p) => p.textContent)).trim())) {
    if (seconds(sent) > task.timeout_s) {
      return { output: null, seconds: seconds(sent) };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const done = seconds(sent);
  const output = await cell.$$eval(".jp-OutputArea-output", (outputs) =>
    outputs.map((o) => o.innerText).join("\n"),
  );
  return { output, seconds: done };
}

async function readStdin() {
  const parts = [];
  for await (const part of process.stdin) parts.push(part);
  return Buffer.concat(parts).toString("utf8");
}

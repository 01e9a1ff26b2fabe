// Browser-side benchmark of the dashboard in headless Chromium (run by
// `cargo bench -p pitbox-runtime --bench dashboard`, which starts the runtime and the nodes):
//  1. page load → first live sample (reload with a saved session; median of 3),
//  2. the pit wall following every driver at 20 Hz,
//  3. the driver view: one driver at 60 Hz plus the others at 20 Hz,
// each for CONFIG.secs, reporting browser main-thread CPU (Chromium's TaskDuration per wall second,
// from the DevTools Performance domain), script time, renders, samples received and frame times
// (intervals between animation frames: median, p95, p99, max; long frames > 50 ms).
// CONFIG: {url, engineer:{username,password}, focus: driverId, secs, chromium}
const { launch } = require("./chromium.cjs");
const fs = require("node:fs");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const T = 30000;

const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return +s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(2);
};

async function measure(page, secs) {
  await page.evaluate(() => {
    window.__frames = [];
    let last = performance.now();
    const tick = (t) => { window.__frames.push(t - last); last = t; if (window.__frames) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  });
  const m0 = await page.metrics();
  const s0 = await page.evaluate(() => ({ ...window.__pitbox }));
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, secs * 1000));
  const m1 = await page.metrics();
  const s1 = await page.evaluate(() => ({ ...window.__pitbox }));
  const frames = await page.evaluate(() => { const f = window.__frames.slice(1); window.__frames = null; return f; });
  const wall = (Date.now() - t0) / 1000;
  return {
    seconds: +wall.toFixed(1),
    cpuPercent: +(100 * (m1.TaskDuration - m0.TaskDuration) / wall).toFixed(1),
    scriptPercent: +(100 * (m1.ScriptDuration - m0.ScriptDuration) / wall).toFixed(1),
    layoutPlusStyleMsPerSec: +(1000 * ((m1.LayoutDuration - m0.LayoutDuration) + (m1.RecalcStyleDuration - m0.RecalcStyleDuration)) / wall).toFixed(1),
    samplesPerSec: +((s1.samples - s0.samples) / wall).toFixed(1),
    rendersPerSec: +((s1.renders - s0.renders) / wall).toFixed(1),
    seqGaps: s1.seqGaps,
    frames: frames.length,
    frameMs: { p50: pct(frames, 0.5), p95: pct(frames, 0.95), p99: pct(frames, 0.99), max: pct(frames, 1) },
    longFrames: frames.filter((f) => f > 50).length,
    jsHeapMiB: +(m1.JSHeapUsedSize / 1048576).toFixed(1),
  };
}

(async () => {
  const { browser, close } = await launch(cfg.chromium);
  const out = { browser: await browser.version() };
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    await page.goto(cfg.url, { waitUntil: "load" });
    await page.waitForSelector("#username", { timeout: T });
    await page.type("#username", cfg.engineer.username);
    await page.type("#password", cfg.engineer.password);
    await page.click("#login-btn");
    await page.waitForFunction((n) => document.querySelectorAll("tr.car .speed").length >= n &&
      [...document.querySelectorAll("tr.car .speed")].every((e) => e.textContent !== "–"), { timeout: T }, cfg.drivers);

    const loads = [];
    for (let i = 0; i < 3; i++) {
      await page.reload({ waitUntil: "load" });
      await page.waitForFunction(() => window.__pitbox && window.__pitbox.firstSampleAt > 0, { timeout: T });
      loads.push(await page.evaluate(() => {
        const nav = performance.getEntriesByType("navigation")[0];
        return { firstSample: window.__pitbox.firstSampleAt, domContentLoaded: nav.domContentLoadedEventEnd };
      }));
    }
    out.pageLoadToFirstSampleMs = pct(loads.map((l) => l.firstSample), 0.5);
    out.domContentLoadedMs = pct(loads.map((l) => l.domContentLoaded), 0.5);
    out.wasmGzipBytes = cfg.wasmGzipBytes;

    await page.waitForFunction(() => [...document.querySelectorAll("tr.car .speed")].length > 0, { timeout: T });
    out.pitWall = await measure(page, cfg.secs);
    await page.evaluate((id) => { location.hash = `#/driver/${id}`; }, cfg.focus);
    await page.waitForFunction(() => document.querySelector("#drv-speed") && document.querySelector("#drv-speed").textContent !== "–", { timeout: T });
    out.driverView = await measure(page, cfg.secs);
    await page.screenshot({ path: cfg.shot });
    out.ok = true;
  } catch (e) {
    out.error = String(e);
    process.exitCode = 1;
  } finally {
    await close();
  }
  console.log(JSON.stringify(out));
})();

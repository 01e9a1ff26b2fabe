// End-to-end check of the dashboard in headless Debian Chromium (puppeteer-core, no browser
// download), against a real runtime with real driver nodes streaming. Run by
// runtime/tests/browser.rs, which starts the runtime and the nodes and passes a config file:
//   node e2e.cjs CONFIG.json      (NODE_PATH must hold puppeteer-core)
// CONFIG: {url, engineer:{username,password}, driver:{username,password,driverId},
//          drivers:[driverId...], shots: DIR, chromium: PATH}
// Prints one JSON line of figures; exits non-zero on the first failed step (with a screenshot).
const { launch } = require("./chromium.cjs");
const fs = require("node:fs");
const path = require("node:path");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const T = 20000; // per-step limit: generous for a loaded 2-core CI machine
const figures = {};
const logs = [];
let step = "start";

function note(page, who) {
  page.on("console", (m) => logs.push(`${who} console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`${who} pageerror: ${e.message}`));
}

async function login(page, who, user) {
  step = `${who}: login`;
  const t0 = Date.now();
  await page.goto(cfg.url, { waitUntil: "load" });
  await page.waitForSelector("#username", { timeout: T });
  await page.type("#username", user.username);
  await page.type("#password", user.password);
  await page.click("#login-btn");
  step = `${who}: socket live`;
  await page.waitForSelector('#conn[data-state="Live"]', { timeout: T });
  step = `${who}: first live sample`;
  await page.waitForFunction(() => window.__pitbox && window.__pitbox.firstSampleAt > 0, { timeout: T });
  figures[`${who}LoginToFirstSampleMs`] = Date.now() - t0;
}

(async () => {
  fs.mkdirSync(cfg.shots, { recursive: true });
  const { browser, close } = await launch(cfg.chromium);
  let a, b;
  try {
    figures.browser = await browser.version();
    a = await browser.newPage();
    await a.setViewport({ width: 1400, height: 1000 });
    // Test instrumentation (not the app's): keep the page's WebSockets so the test can cut one.
    await a.evaluateOnNewDocument(() => {
      const Native = window.WebSocket;
      window.__testSockets = [];
      window.WebSocket = function (url, protocols) {
        const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
        window.__testSockets.push(ws);
        return ws;
      };
      window.WebSocket.prototype = Native.prototype;
      Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
    });
    note(a, "A");
    await login(a, "engineer", cfg.engineer);
    const loginToken = await a.evaluate(() => JSON.parse(localStorage.getItem("pitbox.session")).token);

    // Every streaming driver appears, and a speed value changes while we watch.
    step = "drivers appear";
    await a.waitForFunction((ids) => ids.every((id) => {
      const s = document.querySelector(`tr.car[data-driver="${id}"] .speed`);
      return s && s.textContent !== "–";
    }), { timeout: T }, cfg.drivers);
    step = "speed changes";
    const first = cfg.drivers[0];
    const sel = `tr.car[data-driver="${first}"] .speed`;
    const before = await a.$eval(sel, (e) => e.textContent);
    await a.waitForFunction((s, v) => document.querySelector(s).textContent !== v, { timeout: T }, sel, before);
    figures.speedBefore = before;
    figures.speedAfter = await a.$eval(sel, (e) => e.textContent);
    await a.screenshot({ path: path.join(cfg.shots, "1-overview.png") });

    // The driver view: live numbers and traces.
    step = "driver view";
    await a.click(`tr.car[data-driver="${first}"]`);
    await a.waitForFunction(() => location.hash.startsWith("#/driver/"), { timeout: T });
    await a.waitForFunction(() => {
      const s = document.querySelector("#drv-speed");
      return s && s.textContent !== "–";
    }, { timeout: T });
    const g1 = await a.$eval("#drv-rpm", (e) => e.textContent);
    await a.waitForFunction((v) => document.querySelector("#drv-rpm").textContent !== v, { timeout: T }, g1);
    figures.driverViewGear = await a.$eval("#drv-gear", (e) => e.textContent);
    await a.screenshot({ path: path.join(cfg.shots, "2-driver.png") });


    // A second browser session (another user, its own storage) gets the team message.
    step = "second session";
    const ctxB = await browser.createBrowserContext();
    b = await ctxB.newPage();
    await b.setViewport({ width: 1400, height: 1000 });
    note(b, "B");
    await login(b, "driver", cfg.driver);
    step = "team message";
    const text = `Box this lap — fuel check ${Date.now()}`;
    await a.type("#msg-text", text);
    await a.select("#msg-priority", "high");
    const sentAt = Date.now();
    await a.click("#msg-send");
    await b.waitForFunction((t) => [...document.querySelectorAll("#messages .msg .text")].some((e) => e.textContent === t),
      { timeout: T }, text);
    figures.messageDeliveryMs = Date.now() - sentAt;
    const prio = await b.$eval("#messages .msg", (e) => e.className);
    if (!prio.includes("high") || !prio.includes("unread")) throw new Error(`message classes: ${prio}`);
    await b.screenshot({ path: path.join(cfg.shots, "3-message-received.png") });

    // A handoff to the driver of session B: requested by A, accepted by B, completed by A.
    step = "handoff request";
    await a.select("#ho-from", cfg.drivers[1]);
    await a.select("#ho-target", cfg.driver.driverId);
    await a.type("#ho-reason", "Driver change at the next stop");
    await a.select("#ho-urgency", "urgent");
    await a.click("#ho-send");
    await b.waitForSelector('#handoffs .handoff[data-status="pending"] .ho-accept', { timeout: T });
    const snap = await b.$eval('#handoffs .handoff[data-status="pending"]', (e) => e.textContent);
    if (!snap.includes("at request")) throw new Error(`no telemetry snapshot on the handoff: ${snap}`);
    step = "handoff accept";
    await b.click('#handoffs .handoff[data-status="pending"] .ho-accept');
    await a.waitForSelector('#handoffs .handoff[data-status="accepted"] .ho-complete', { timeout: T });
    step = "handoff complete";
    await a.click('#handoffs .handoff[data-status="accepted"] .ho-complete');
    await b.waitForSelector('#handoffs .handoff[data-status="completed"]', { timeout: T });
    await b.screenshot({ path: path.join(cfg.shots, "4-handoff.png") });

    // The replayed driver's laps: the lap table, a live delta to the reference (best) lap, and
    // the comparison chart with both laps drawn (pixels of each lap's colour on the canvas).
    step = "laps, delta and lap comparison";
    await a.evaluate((id) => { location.hash = `#/driver/${id}`; }, cfg.drivers[1]);
    await a.waitForFunction(() => document.querySelectorAll("#laps .lap-row").length >= 2, { timeout: T });
    figures.laps = await a.$$eval("#laps .lap-row", (rows) => rows.map((r) => [...r.children].slice(0, 6).map((c) => c.textContent).join(" ")));
    await a.waitForFunction(() => /^[+\-±]\d/.test(document.querySelector("#drv-delta").textContent), { timeout: T });
    figures.liveDelta = await a.$eval("#drv-delta", (e) => e.textContent);
    await a.waitForFunction(() => {
      const c = document.querySelector("#compare");
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let a = 0, b = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i] === 79 && d[i + 1] === 195 && d[i + 2] === 247) a++;
        if (d[i] === 255 && d[i + 1] === 202 && d[i + 2] === 40) b++;
      }
      return a > 100 && b > 100;
    }, { timeout: T });
    await a.screenshot({ path: path.join(cfg.shots, "5-laps.png") });

    // The coach: its feed on the driver view (priority, confidence, lap, statements with their
    // numbers), then the team's feed and the strategy panel with the car's fuel on the pit wall.
    step = "coaching feed and strategy panel";
    await a.waitForFunction(() => [...document.querySelectorAll("#coaching .coach-msg")].some((m) =>
      /\d+% sure/.test(m.textContent) && /lap \d+/.test(m.textContent) && m.querySelector(".text").textContent.length > 5),
      { timeout: T });
    figures.coaching = await a.$$eval("#coaching .coach-msg .text", (e) => e.slice(0, 3).map((x) => x.textContent));
    await a.click("#nav-overview");
    await a.waitForSelector("#team-coaching .coach-msg", { timeout: T });
    await a.waitForFunction(() => [...document.querySelectorAll("#strategy .strategy-row")].some((r) =>
      /\d+\.\d L/.test(r.textContent)), { timeout: T });
    figures.strategy = await a.$$eval("#strategy .strategy-row", (rows) => rows.map((r) => r.textContent));
    await a.screenshot({ path: path.join(cfg.shots, "5b-coach.png") });
    // Onboard video (after the replay's laps, checked while that replay still runs): the synthetic
    // node sends its test pattern; WebCodecs decodes it into the panel's canvas (frames counted,
    // latency measured). A browser without H.264 in WebCodecs must say so in the panel instead.
    step = "onboard video";
    await a.evaluate((id) => { location.hash = `#/driver/${id}`; }, cfg.drivers[0]);
    figures.videoH264 = await a.evaluate(async () => {
      if (typeof VideoDecoder === "undefined") return "no WebCodecs";
      const r = await VideoDecoder.isConfigSupported({ codec: "avc1.42E01F", optimizeForLatency: true });
      return r.supported ? "supported" : "unsupported";
    });
    if (figures.videoH264 === "supported") {
      await a.waitForFunction(() => {
        const c = document.querySelector("#onboard-video");
        return c && Number(c.dataset.frames || 0) >= 20;
      }, { timeout: T });
      figures.videoFrames = await a.$eval("#onboard-video", (c) => Number(c.dataset.frames));
      figures.videoLatencyMs = await a.$eval("#onboard-video", (c) => Number(c.dataset.latencyMs));
      figures.videoFps = await a.$eval("#onboard-video", (c) => Number(c.dataset.fps));
      // Glass to glass (capture timestamp on the node → picture decoded here), over the last 300.
      figures.videoLatencyP50Ms = await a.$eval("#onboard-video", (c) => Number(c.dataset.latencyP50Ms));
      figures.videoLatencyP99Ms = await a.$eval("#onboard-video", (c) => Number(c.dataset.latencyP99Ms));
      figures.videoStatus = await a.$eval("#onboard-status", (e) => e.textContent);
    } else {
      await a.waitForFunction(() => /WebCodecs|H\.264/.test(document.querySelector("#onboard-status")?.textContent || ""),
        { timeout: T });
      figures.videoStatus = await a.$eval("#onboard-status", (e) => e.textContent);
    }
    await a.screenshot({ path: path.join(cfg.shots, "2b-video.png") });

    // The engineer view: the live actor tree, with rates once two snapshots arrived.
    step = "engineer view";
    await a.click("#nav-engineer");
    await a.waitForSelector('#tree tr.actor[data-kind="driver_session"]', { timeout: T });
    await a.waitForFunction(() => [...document.querySelectorAll("#tree tr.actor")].some((r) =>
      r.children[7] && r.children[7].textContent !== "–"), { timeout: T });
    figures.actorRows = await a.$$eval("#tree tr.actor", (r) => r.length);
    // The driver's video relay shows its own gauges: the frames it relayed to this dashboard.
    step = "video relay gauges";
    await a.waitForFunction((decoded) => {
      const g = document.querySelector('#tree tr.actor[data-kind="video_relay"] .gauge[data-gauge="frames"]');
      return g && (!decoded || Number((g.textContent.match(/frames (\d+)/) || [])[1] || 0) > 0);
    }, { timeout: T }, figures.videoH264 === "supported");
    figures.relayGauges = await a.$$eval('#tree tr.actor[data-kind="video_relay"] .gauge', (g) => g.map((e) => e.textContent));
    step = "collapse a branch";
    const rowsBefore = figures.actorRows;
    await a.click('#tree tr.actor[data-kind="team_supervisor"] .toggle');
    await a.waitForFunction((n) => document.querySelectorAll("#tree tr.actor").length < n, { timeout: T }, rowsBefore);
    await a.click('#tree tr.actor[data-kind="team_supervisor"] .toggle');
    await a.waitForFunction((n) => document.querySelectorAll("#tree tr.actor").length >= n, { timeout: T }, rowsBefore);
    // An operator's tool: teams and drivers by name, sparklines per actor, a selected actor's detail.
    step = "actor names and sparklines";
    await a.waitForFunction(() => [...document.querySelectorAll('#tree tr.actor[data-kind="driver_session"] .tree-name span')]
      .map((e) => e.textContent).sort().join() === "replay,synth", { timeout: T });
    figures.teamActorLabel = await a.$eval('#tree tr.actor[data-kind="team_supervisor"] .tree-name span', (e) => e.textContent);
    if (figures.teamActorLabel !== "E2E Racing") throw new Error("team shown as " + figures.teamActorLabel);
    await a.waitForSelector('#tree tr.actor svg.spark.rate polyline[points*=","]', { timeout: T });
    step = "actor detail";
    await a.click('#tree tr.actor[data-kind="driver_session"] .tree-name span');
    await a.waitForSelector('#actor-detail[data-path*="/drivers/"]', { timeout: T });
    figures.actorDetail = await a.$eval("#actor-detail h3", (e) => e.textContent);
    const child = await a.$eval("#actor-detail .children a", (e) => e.dataset.path);
    await a.click("#actor-detail .children a");
    await a.waitForFunction((p) => {
      const d = document.querySelector("#actor-detail");
      return d && d.dataset.path === p && document.querySelector(`#tree tr.actor.selected[data-path="${p}"]`);
    }, { timeout: T }, child);
    await a.screenshot({ path: path.join(cfg.shots, "6-engineer.png") });
    await a.click("#actor-detail .close");
    await a.waitForFunction(() => !document.querySelector("#actor-detail"), { timeout: T });

    // A driver user does not get the engineer view.
    step = "role-aware navigation";
    if (await b.$("#nav-engineer")) throw new Error("a driver sees the engineer link");

    // The connection drops (the test closes the page's team socket under it) and the dashboard
    // gets it back by itself: badge, re-authentication, subscriptions, live data.
    step = "reconnect";
    await a.click("#nav-overview");
    const lostAt = Date.now();
    await a.evaluate(() => window.__testSockets.filter((w) => w.url.endsWith("/ws")).forEach((w) => w.close()));
    await a.waitForFunction(() => document.querySelector("#conn").dataset.state.startsWith("Reconnecting"), { timeout: T });
    figures.lostBadge = await a.$eval("#conn", (e) => e.textContent);
    await a.waitForSelector('#conn[data-state="Live"]', { timeout: T });
    figures.reconnectMs = Date.now() - lostAt;
    const s2 = await a.$eval(sel, (e) => e.textContent);
    await a.waitForFunction((s, v) => document.querySelector(s).textContent !== v, { timeout: T }, sel, s2);

    // The access token lives 10 s in this test: the dashboard has refreshed it by now, and REST
    // calls still work with the new one.
    step = "token refresh";
    await a.waitForFunction((t) => JSON.parse(localStorage.getItem("pitbox.session")).token !== t, { timeout: T },
      loginToken);
    const marked = await a.evaluate(async () => {
      const s = JSON.parse(localStorage.getItem("pitbox.session"));
      const r = await fetch("/api/auth/me", { headers: { Authorization: `Bearer ${s.token}` } });
      return r.status;
    });
    if (marked !== 200) throw new Error(`REST with the refreshed token: HTTP ${marked}`);

    // Logging out ends the session here and shows the login form again.
    step = "logout";
    await b.click("#logout");
    await b.waitForSelector("#username", { timeout: T });
    if (await b.evaluate(() => localStorage.getItem("pitbox.session"))) throw new Error("session kept after logout");

    step = "stats";
    figures.stats = await a.evaluate(() => window.__pitbox);
    figures.ok = true;
    console.log(JSON.stringify({ figures, logs: logs.filter((l) => l.includes("error")) }));
  } catch (e) {
    for (const [p, n] of [[a, "A"], [b, "B"]]) {
      if (p) await p.screenshot({ path: path.join(cfg.shots, `failed-${n}.png`) }).catch(() => {});
    }
    console.log(JSON.stringify({ failedStep: step, error: String(e), figures, logs }));
    process.exitCode = 1;
  } finally {
    await close();
  }
})();

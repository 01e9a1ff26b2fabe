// Headless Debian Chromium for the dashboard's browser test and benchmark, driven by
// puppeteer-core (no browser download). The flags keep it off the network: this machine's closed
// network refuses Chromium's background connections.
const puppeteer = require("puppeteer-core");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

async function launch(executablePath) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "pitbox-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: executablePath || "/usr/bin/chromium",
    headless: true,
    userDataDir,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--window-size=1400,1000"],
  });
  const close = async () => {
    await browser.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { browser, close };
}

module.exports = { launch };

// Browser test of the coordinator's live page, in real headless Chromium (Debian's, driven by puppeteer-core):
// loads the page while a sweep runs, waits until its plots are drawn, reads the plotted values (#plotted) and
// compares them with /api/v1; then, without a reload, waits until the page shows the finished sweep.
// Usage: node live_page.cjs NODE_MODULES_DIR BASE_URL TOKEN SWEEP TIMEOUT_S [SCREENSHOT.png]
// Prints "partial ..." when the page matched the API while runs were unfinished, then "ok" (exit 0), or "FAIL ..."
// (exit 1). Used by tests/integration/coordinator_test.cc (CoordinatorHttpTest.LivePage...).
"use strict";
const [nodeModules, base, token, sweep, timeoutS, screenshot] = process.argv.slice(2);
const puppeteer = require(nodeModules + "/puppeteer-core");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function apiReport() {
  const r = await fetch(`${base}/api/v1/sweeps/${sweep}/report`, { headers: { Authorization: "Bearer " + token } });
  if (!r.ok) throw new Error(`api: ${r.status} ${await r.text()}`);
  return r.json();
}

// The figures as the API gives them, in the form the page writes to #plotted.
function expected(report) {
  return report.figures.map((f) => ({
    id: f.id,
    series: f.series.map((s) => ({ label: s.label, points: s.x.map((x, i) => [x, s.y[i]]) })),
  }));
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
  });
  let code = 1;
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${base}/?sweep=${sweep}#token=${encodeURIComponent(token)}`, { waitUntil: "load" });
    await page.evaluate(() => { window.__sameDocument = true; });  // gone if the page reloads
    if (page.url().includes("token=")) throw new Error("the token stayed in the address bar: " + page.url());
    const deadline = Date.now() + Number(timeoutS) * 1000;
    let partialDraws = null;
    let last = "";
    while (Date.now() < deadline) {
      const text = await page.$eval("#plotted", (e) => e.textContent);
      const report = await apiReport();
      if (text) {
        const plotted = JSON.parse(text);
        const same = JSON.stringify(plotted.figures) === JSON.stringify(expected(report)) && plotted.cells === report.cells.length;
        const unfinished = report.notes.some((n) => n.includes("no result yet"));
        const points = plotted.figures.reduce((a, f) => a + f.series.reduce((b, s) => b + s.points.length, 0), 0);
        last = `draws ${plotted.draws}, ${plotted.figures.length} figures, ${points} points, same as API: ${same}, unfinished: ${unfinished}`;
        if (same && points > 0 && unfinished && partialDraws === null) {
          partialDraws = plotted.draws;
          console.log("partial " + last);
        }
        if (same && points > 0 && !unfinished && partialDraws !== null && plotted.draws > partialDraws) {
          if (!(await page.evaluate(() => window.__sameDocument === true))) throw new Error("the page was reloaded");
          if (errors.length) throw new Error("page errors: " + errors.join("; "));
          if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
          console.log("ok " + last);
          code = 0;
          break;
        }
      }
      await sleep(300);
    }
    if (code !== 0) console.log("FAIL timed out; last: " + (last || "nothing drawn") + (errors.length ? "; page errors: " + errors.join("; ") : ""));
  } catch (e) {
    console.log("FAIL " + (e && e.stack ? e.stack : e));
  } finally {
    await browser.close();
  }
  process.exit(code);
})();

// Times the report page in headless Chromium: from navigation start until the page has drawn its figures
// (<body data-draws="1">), median of N loads. Prints the milliseconds. Usage: node page_draw_time.cjs NODE_MODULES PAGE.html N
"use strict";
const [nodeModules, page, repeats] = process.argv.slice(2);
const puppeteer = require(nodeModules + "/puppeteer-core");
(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const times = [];
  for (let i = 0; i < Number(repeats || 3); ++i) {
    const tab = await browser.newPage();
    await tab.goto("file://" + page, { waitUntil: "load" });
    await tab.waitForSelector("body[data-draws='1']", { timeout: 30000 });
    times.push(await tab.evaluate(() => performance.now()));  // ms since this document's navigation started
    await tab.close();
  }
  await browser.close();
  times.sort((a, b) => a - b);
  console.log(times[Math.floor(times.length / 2)].toFixed(1));
})().catch((e) => { console.log("error " + e); process.exit(1); });

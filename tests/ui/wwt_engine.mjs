// Draws a published WWT study with the WWT WebGL engine (@wwtelescope/engine, from npm) in
// headless Debian chromium (SwiftShader's WebGL): loads the page, which loads the study's
// WTML and points the view at it, waits until the engine has no tile left to fetch and has
// drawn frames since, then saves a screenshot of the canvas and prints, as JSON, where the
// engine itself puts the given sky positions on the screen. Exit 1 when it cannot.
//   node tests/ui/wwt_engine.mjs PAGE_URL SCREENSHOT.png
import { chromium } from "playwright-core";

const [pageUrl, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--use-angle=swiftshader", // WebGL in software: no GPU on these machines
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const errors = [];
let result = null;
try {
  const page = await browser.newPage({ viewport: { width: 800, height: 800 }, deviceScaleFactor: 1 });
  page.on("pageerror", (e) => errors.push(String(e.message).slice(0, 300)));
  await page.goto(pageUrl, { timeout: 60000 });
  await page.waitForFunction(() => window.drawn === true, null, { timeout: 90000, polling: 200 });
  result = await page.evaluate(() => window.result);
  await page.locator("canvas").first().screenshot({ path: screenshot });
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ...result, errors }));
process.exit(result ? 0 : 1);

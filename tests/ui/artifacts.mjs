// Opens a flow run in the Prefect UI (headless Debian chromium), clicks its Artifacts tab, and
// looks for the report's product table, whether it fits the 1400 px page, and how many of its
// PNG pictures the UI drew. Prints what it found as JSON; exit 1 when absent.
//   node tests/ui/artifacts.mjs UI_URL FLOW_RUN_ID ARTIFACT_KEY TEXT SCREENSHOT.png
import { chromium } from "playwright-core";

const [ui, runId, key, text, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
let found = { artifactsTab: false, key: false, text: false };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`${ui}/runs/flow-run/${runId}`, { waitUntil: "networkidle", timeout: 90000 });
  await page.getByRole("tab", { name: "Artifacts" }).or(page.getByText("Artifacts", { exact: true })).first().click({ timeout: 60000 });
  found.artifactsTab = true;
  await page.getByText(key).first().waitFor({ timeout: 60000 });
  found.key = true;
  // the card of the report: open it when the tab shows only its key
  if (!(await page.getByText(text).first().isVisible().catch(() => false))) {
    await page.getByText(key).first().click();
  }
  await page.getByText(text).first().waitFor({ timeout: 60000 });
  found.text = true;
  // everything within the 1400 px page: no horizontal scrolling, of the page or of a table
  const wide = await page.evaluate(() => {
    const out = [];
    if (document.documentElement.scrollWidth > window.innerWidth) {
      out.push(`page ${document.documentElement.scrollWidth}px`);
    }
    for (const e of document.querySelectorAll("*")) {
      if (e.scrollWidth > e.clientWidth + 1 && ["auto", "scroll"].includes(getComputedStyle(e).overflowX)) {
        const head = [...e.querySelectorAll("th")].map((h) => h.textContent.trim()).join(",");
        out.push(`${e.tagName.toLowerCase()}.${[...e.classList].join(".")} [${head}] ${e.scrollWidth}>${e.clientWidth}px`);
      }
    }
    return out;
  });
  found.fits = wide.length === 0;
  // the report's pictures (PNG data URIs): drawn by the UI, not stripped by its sanitizer
  await page.waitForTimeout(1000);
  found.pictures = await page.evaluate(
    () =>
      [...document.querySelectorAll("img")].filter(
        (i) => i.src.startsWith("data:image/png") && i.complete && i.naturalWidth > 0,
      ).length,
  );
  found.wide = wide.slice(0, 5);
  await page.screenshot({ path: screenshot, fullPage: true });
} catch (err) {
  found.error = String(err).slice(0, 500);
} finally {
  await browser.close();
}
console.log(JSON.stringify(found));
process.exit(found.text ? 0 : 1);

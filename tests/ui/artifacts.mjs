// Opens a flow run in the Prefect UI (headless Debian chromium), clicks its Artifacts tab, and
// looks for the report's product table. Prints what it found as JSON; exit 1 when absent.
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
  await page.screenshot({ path: screenshot, fullPage: true });
} catch (err) {
  found.error = String(err).slice(0, 500);
} finally {
  await browser.close();
}
console.log(JSON.stringify(found));
process.exit(found.text ? 0 : 1);

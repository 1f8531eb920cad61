// Remakes assets/dashboard.png: the dashboard over run directories, screenshotted in chromium.
//   node scripts/dashboard-screenshot.mjs OUT.png RUN_DIR [RUN_DIR...]
// (The README's is of `omni-dpo demo --out /tmp/demo`'s math-pipeline runs of the first pair seed: /tmp/demo/runs/math-*-t0-p0.)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startDashboard } from "../dist/src/report/dashboard-server.js";

const [out, ...dirs] = process.argv.slice(2);
if (!out || !dirs.length) {
  console.error("usage: node scripts/dashboard-screenshot.mjs OUT.png RUN_DIR...");
  process.exit(2);
}
const dash = await startDashboard(dirs);
const profile = mkdtempSync(join(tmpdir(), "omni-dpo-shot-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1400, height: 900 },
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
try {
  const page = await context.newPage();
  await page.goto(dash.url);
  await page.waitForSelector("[data-chart] g.series");
  await page.waitForTimeout(300);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await context.close();
  await dash.close();
  rmSync(profile, { recursive: true, force: true });
}

// Evaluation results on the dashboard: the figures read from `eval --json` files (win rate and
// math), and in a real browser (chromium via playwright-core) the exported page and the live one:
//   - one evaluation: a table of its figures, no chart;
//   - several (rounds, a directory's files in natural order): a column each, and a line per
//     figure that changes over them: the rates on one chart, every other figure on its own;
//   - an unreadable file is a problem shown on the page, not a failure.
import { after, before, describe, it, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { evalMetrics } from "../../src/report/eval-results.js";
import { startDashboard } from "../../src/report/dashboard-server.js";
import { packageRoot } from "../../src/util/package-root.js";
import { CHROMIUM, skipUnless } from "../helpers/requirements.js";
import { tempDir } from "../helpers/toy.js";

const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");

/** A win-rate summary as `eval --task winrate --json` prints it. */
const winRate = (round: number) => ({
  mode: "pairwise",
  judge: "reward model rm",
  n: 20,
  prompts: 20,
  win_rate: 0.4 + round / 20,
  ci95: [0.3 + round / 20, 0.5 + round / 20],
  lc_win_rate: 0.35 + round / 20,
  wins: 8 + round,
  ties: 1,
  losses: 11 - round,
  mean_length: 300 + 25 * round,
  baseline_mean_length: 310,
  unjudged: 0,
  unparseable: 0,
  resumed: 0,
});

test("evalMetrics: numbers, intervals as low/high, one level of nesting, benchmarks by dataset", () => {
  const m = evalMetrics(winRate(1));
  assert.equal(m.win_rate, 0.45);
  assert.equal(m["ci95 low"], 0.35);
  assert.equal(m["ci95 high"], 0.55);
  assert.equal(m.resumed, undefined);
  assert.equal(m.mode, undefined);
  const math = evalMetrics({
    benchmarks: [
      { dataset: "math500", accuracy: 0.5, pass_at_k: { "1": 0.5 }, n: 500, seconds: 9 },
      { dataset: "gsm8k", accuracy: 0.75, n: 1319 },
    ],
    average: 0.625,
  });
  assert.deepEqual(math, {
    "math500 accuracy": 0.5,
    "math500 pass_at_k 1": 0.5,
    "math500 n": 500,
    "gsm8k accuracy": 0.75,
    "gsm8k n": 1319,
    average: 0.625,
  });
});

describe("evaluations on the dashboard, in chromium", { skip: skipUnless("chromium") }, () => {
  let root: string;
  let browser: Browser;
  before(async () => {
    root = tempDir("omni-dpo-evals-");
    mkdirSync(join(root, "rounds"));
    for (const r of [1, 2, 10]) writeFileSync(join(root, "rounds", `round-${r}.json`), JSON.stringify(winRate(r)));
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu"],
    });
  });
  after(async () => {
    await browser?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** The page's evaluation table (header cells, and figure -> cells) and its charts' series point counts. */
  async function shown(page: Page) {
    return page.evaluate(() => {
      const table = document.querySelector("table[data-evals]");
      const header = [...(table?.querySelectorAll("th") ?? [])].map((th) => th.textContent ?? "");
      const rows: Record<string, string[]> = {};
      for (const tr of table?.querySelectorAll("tr[data-figure]") ?? []) {
        rows[(tr as HTMLElement).dataset.figure!] = [...tr.querySelectorAll("td")]
          .slice(1)
          .map((td) => td.textContent ?? "");
      }
      const series: Record<string, number> = {};
      for (const g of document.querySelectorAll<SVGGElement>("#evals [data-chart] g.series")) {
        const chart = g.closest<HTMLElement>("[data-chart]")!.dataset.chart!;
        series[`${chart}|${g.dataset.series}`] = g.querySelectorAll("circle.pt").length;
      }
      const problems = [...document.querySelectorAll("#evals .problems li")].map((li) => li.textContent ?? "");
      return { header, rows, series, problems };
    });
  }

  it("one evaluation: a table of its figures, no chart", async () => {
    const out = join(root, "one.html");
    const r = spawnSync(
      process.execPath,
      [CLI, "dashboard", "--eval", join(root, "rounds", "round-2.json"), "--export", out],
      {
        encoding: "utf8",
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /0 runs, 1 evaluation/);
    const page = await browser.newPage();
    await page.goto(pathToFileURL(out).href);
    const s = await shown(page);
    assert.deepEqual(s.header, ["figure", "round-2"]);
    assert.deepEqual(s.rows.win_rate, ["0.5"]);
    assert.deepEqual(s.rows["ci95 high"], ["0.6"]);
    assert.deepEqual(s.rows.n, ["20"]);
    assert.deepEqual(s.series, {});
    await page.close();
  });

  it("several: a column each in natural order, a line per figure; an unreadable file is shown as a problem", async () => {
    const out = join(root, "rounds.html");
    writeFileSync(join(root, "broken.json"), "{ not json");
    const args = [
      CLI,
      "dashboard",
      "--eval",
      join(root, "rounds"),
      "--eval",
      join(root, "broken.json"),
      "--export",
      out,
    ];
    const r = spawnSync(process.execPath, args, { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /broken\.json: cannot read an evaluation JSON/);
    const page = await browser.newPage();
    await page.goto(pathToFileURL(out).href);
    const s = await shown(page);
    assert.deepEqual(s.header, ["figure", "1. round-1", "2. round-2", "3. round-10", "4. broken"]);
    assert.deepEqual(s.rows.win_rate, ["0.45", "0.5", "0.9", ""]);
    assert.deepEqual(s.rows.mean_length, ["325", "350", "550", ""]);
    // Rates on one chart, every other figure that changes on its own; those that stay the same
    // (n, ties, the baseline's length) only in the table.
    assert.deepEqual(s.series, {
      "eval-rates|win_rate": 3,
      "eval-rates|ci95 low": 3,
      "eval-rates|ci95 high": 3,
      "eval-rates|lc_win_rate": 3,
      "eval-wins|wins": 3,
      "eval-losses|losses": 3,
      "eval-mean_length|mean_length": 3,
    });
    assert.equal(s.problems.length, 1);
    assert.match(s.problems[0], /broken\.json/);
    await page.close();
  });

  it("the live dashboard shows them too, read again on each page load", async () => {
    const file = join(root, "live.json");
    writeFileSync(file, JSON.stringify(winRate(1)));
    const dash = await startDashboard([], { port: 0, evals: [file] });
    try {
      const page = await browser.newPage();
      await page.goto(dash.url);
      assert.deepEqual((await shown(page)).rows.win_rate, ["0.45"]);
      writeFileSync(file, JSON.stringify(winRate(3)));
      await page.reload();
      assert.deepEqual((await shown(page)).rows.win_rate, ["0.55"]);
      await page.close();
    } finally {
      await dash.close();
    }
  });
});

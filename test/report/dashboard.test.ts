// The dashboard in a real browser (Debian's chromium, driven by playwright-core), on run
// directories made here: a tiny real Omni-DPO training (metrics.jsonl, pair_log.jsonl,
// checkpoints, a finished run), a run being written (rows in the trainer's format, held by a
// live lock), and a directory that is not a run.
//   - each chart draws one point per row that has its metric, per run (runs overlaid);
//   - a partial last line is reported, and the row appears within seconds once complete, with
//     no page reload (server-sent events);
//   - the scatter draws one point per followed pair; the slider moves over the logged steps;
//   - state: finished, running (with an ETA), not a run (the page says what is missing);
//   - `omni-dpo dashboard --export` writes one file that opens with every network request
//     blocked, and none is attempted;
//   - screenshots (under the test's temp dir) are not blank;
// The browser tests skip with the reason when chromium is absent or OMNI_DPO_SKIP_BROWSER=1 (they
// fail instead under OMNI_DPO_REQUIRE_BROWSER=1, as in CI). Without a browser, everywhere: bad
// requests get 404/405, another Host header 403, and the server keeps serving; a non-loopback
// --host needs --allow-remote.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { hostname } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { BrowserContext, Page } from "playwright-core";
import { torch } from "../../src/index.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { PAIR_LOG_FILE } from "../../src/train/pair-log.js";
import { MetricsSink, type MetricRow } from "../../src/train/metrics.js";
import { DASHBOARD_CHARTS } from "../../src/report/dashboard-page.js";
import { startDashboard, type DashboardServer } from "../../src/report/dashboard-server.js";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";
import { CHROMIUM, skipUnless } from "../helpers/requirements.js";

torch.setNumThreads(1);

const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");
const skip = skipUnless("chromium");

const SAMPLE = 12;
let root: string;
let trained: string, writing: string, notRun: string;
let context: BrowserContext;
let dash: DashboardServer;

function writingRow(step: number): MetricRow {
  return {
    step,
    epoch: step / 10,
    loss: 0.69 - step * 0.01,
    learning_rate: 1e-3,
    grad_norm: 1 + step / 10,
    tokens_per_second: 900 + step,
    "rewards/chosen": 0.01 * step,
    "rewards/rejected": -0.01 * step,
    "rewards/accuracies": 0.5 + step / 40,
    "rewards/margins": 0.02 * step,
    "logps/chosen": -2 + step / 100,
    "logps/rejected": -2 - step / 100,
  };
}

/** Points each run's series of each chart should have: one per row holding the metric. */
function expectedPoints(rows: MetricRow[], name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of DASHBOARD_CHARTS)
    for (const k of c.keys) {
      const n = rows.filter((r) => typeof r[k] === "number").length;
      if (n) out[`${c.id}|${c.keys.length > 1 ? `${name} ${k.split("/").pop()}` : name}`] = n;
    }
  return out;
}

/** Points drawn per chart and series, as the page shows them (markers and the series' own count). */
async function drawnPoints(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => {
    const out: Record<string, number> = {};
    for (const g of document.querySelectorAll<SVGGElement>("[data-chart] g.series")) {
      const chart = g.closest<HTMLElement>("[data-chart]")!.dataset.chart!;
      const markers = g.querySelectorAll("circle.pt").length;
      if (String(markers) !== g.dataset.points)
        throw new Error(`${chart} ${g.dataset.series}: ${markers} markers, data-points ${g.dataset.points}`);
      out[`${chart}|${g.dataset.series}`] = markers;
    }
    return out;
  });
}

const pick = (all: Record<string, number>, name: string) =>
  Object.fromEntries(
    Object.entries(all).filter(([k]) => k.split("|")[1] === name || k.split("|")[1].startsWith(`${name} `)),
  );

/** Distinct colours in a PNG, counted by the browser (a blank page has one or two). */
async function distinctColours(page: Page, png: Buffer): Promise<number> {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const canvas = document.createElement("canvas");
    [canvas.width, canvas.height] = [img.width, img.height];
    const ctx = canvas.getContext("2d")!;
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, img.width, img.height).data;
    const seen = new Set<number>();
    for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  }, png.toString("base64"));
}

describe("omni-dpo dashboard in chromium", { skip }, () => {
  before(async () => {
    root = tempDir("omni-dpo-dashboard-");
    const model = writeToyModel(join(root, "model"));
    const data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(24));
    // 20 training pairs (4 held out) in batches of 4: 5 steps an epoch, 2 epochs = 10 steps; logged every step, the pairs every 2.
    const { config } = loadTrainConfig({
      model_name_or_path: model,
      dataset_mixer: { [data]: 1.0 },
      output_dir: join(root, "omni-dpo-run"),
      test_split_size: 4,
      pref_loss: "uni_dpo",
      beta: 2.0,
      uni_dpo_qual_eta: 0.7,
      uni_dpo_tau_ref: 0.8,
      uni_dpo_perf_gamma: 2.0,
      uni_dpo_nll_lambda: 0.01,
      uni_dpo_tau_good: 7.0,
      learning_rate: 3e-3,
      num_train_epochs: 2,
      per_device_train_batch_size: 4,
      per_device_eval_batch_size: 4,
      max_length: 64,
      max_prompt_length: 32,
      logging_steps: 1,
      eval_steps: 3,
      pair_logging_steps: 2,
      pair_log_samples: SAMPLE,
      save_steps: 5,
      seed: 3,
    });
    trained = (await train(config)).outputDir;
    // A run being written: rows in the trainer's format, a lock held by a live process on this host, a checkpoint giving the total.
    writing = join(root, "dpo-writing");
    mkdirSync(join(writing, "checkpoint-2"), { recursive: true });
    writeFileSync(
      join(writing, "checkpoint-2", "omni_dpo_state.json"),
      JSON.stringify({ globalStep: 2, totalSteps: 20 }),
    );
    writeFileSync(
      join(writing, "train.lock"),
      JSON.stringify({ pid: process.pid, hostname: hostname(), started: new Date(Date.now() - 30_000).toISOString() }),
    );
    writeFileSync(
      join(writing, "metrics.jsonl"),
      [1, 2, 3, 4].map((s) => JSON.stringify(writingRow(s)) + "\n").join(""),
    );
    notRun = join(root, "not-a-run");
    mkdirSync(notRun);
    writeFileSync(join(notRun, "notes.txt"), "hello\n");

    dash = await startDashboard([trained, writing, notRun], { intervalMs: 150 });
    const { chromium } = await import("playwright-core");
    context = await chromium.launchPersistentContext(join(root, "chromium-profile"), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 1000 },
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
  });
  after(async () => {
    await context?.close();
    await dash?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("draws every chart (one point per row, runs overlaid), each run's state, and follows appended rows live", async () => {
    const page = await context.newPage();
    await page.goto(dash.url);
    await page.waitForFunction(
      () =>
        document.querySelectorAll(".run").length === 3 && document.querySelectorAll("[data-chart] g.series").length > 0,
    );
    const trainedRows = MetricsSink.read(join(trained, "metrics.jsonl"));
    assert.ok(
      trainedRows.some((r) => "eval_loss" in r),
      "the fixture has eval rows",
    );
    const drawn = await drawnPoints(page);
    assert.deepEqual(pick(drawn, "omni-dpo-run"), expectedPoints(trainedRows, "omni-dpo-run"));
    assert.deepEqual(
      pick(drawn, "dpo-writing"),
      expectedPoints(MetricsSink.read(join(writing, "metrics.jsonl")), "dpo-writing"),
    );
    assert.ok(
      Object.keys(pick(drawn, "omni-dpo-run")).some((k) => k.startsWith("weights|")),
      "Omni-DPO's w_qual/w_perf/gate means are drawn",
    );
    assert.ok(
      Object.keys(pick(drawn, "omni-dpo-run")).some((k) => k.startsWith("eval_loss|")),
      "eval metrics are drawn",
    );

    const runText = (i: number) => page.locator(`.run[data-run="${i}"]`).innerText();
    assert.match(await runText(0), /finished/);
    assert.match(await runText(0), /step 10 of 10/);
    assert.match(await runText(1), /running/);
    assert.match(await runText(1), /step 4 of 20 \(20%\), ETA \d+/);
    assert.match(await runText(2), /not a run/);
    assert.match(await runText(2), /is not a training run/);

    // A line being written is reported, then drawn once complete: no reload (the marker survives).
    await page.evaluate(() => {
      (window as unknown as { marker: number }).marker = 42;
    });
    const full = JSON.stringify(writingRow(5));
    appendFileSync(join(writing, "metrics.jsonl"), full.slice(0, 40));
    await page.waitForFunction(
      () => /last line is incomplete/.test(document.querySelector('.run[data-run="1"]')!.textContent!),
      undefined,
      { timeout: 5000 },
    );
    const t0 = Date.now();
    appendFileSync(join(writing, "metrics.jsonl"), full.slice(40) + "\n");
    await page.waitForFunction(
      () =>
        document
          .querySelector('[data-chart="loss"] g.series[data-series="dpo-writing"]')
          ?.getAttribute("data-points") === "5",
      undefined,
      { timeout: 5000 },
    );
    console.log(`# appended row drawn after ${Date.now() - t0} ms`);
    assert.equal(
      await page.evaluate(() => (window as unknown as { marker: number }).marker),
      42,
      "the page was not reloaded",
    );
    assert.doesNotMatch(await runText(1), /incomplete/);
    assert.match(await runText(1), /step 5 of 20/);

    // Hovering a marker shows its value.
    await page.hover('[data-chart="loss"] g.series[data-series="dpo-writing"] circle.pt >> nth=4');
    assert.match(await page.locator("#tip").innerText(), /dpo-writing: step 5, loss 0\.64/);
    // Log scale and smoothing redraw the same points.
    await page.check("#logscale");
    await page.waitForFunction(() => /\(log\)/.test(document.querySelector('[data-chart="loss"] svg')!.textContent!));
    await page.fill("#smoothing", "0.9");
    await page.waitForFunction(() => document.getElementById("smoothing-value")!.textContent === "0.9");
    const smoothed = await drawnPoints(page);
    assert.equal(smoothed["loss|dpo-writing"], 5);
    assert.equal(smoothed["loss|omni-dpo-run"], drawn["loss|omni-dpo-run"]);
    await page.uncheck("#logscale");
    await page.fill("#smoothing", "0");

    const shot = await page.screenshot({ path: join(root, "live.png"), fullPage: true });
    const colours = await distinctColours(page, shot);
    assert.ok(colours > 20, `the live page's screenshot has ${colours} colours: blank?`);
    await page.close();
  });

  it("the pair view: one point per followed pair, a slider over the logged steps, the pairs that moved most", async () => {
    const page = await context.newPage();
    await page.goto(dash.url);
    await page.waitForSelector('[data-chart="pairs"] circle.dot');
    const lines = readFileSync(join(trained, PAIR_LOG_FILE), "utf8").trim().split("\n");
    const header = JSON.parse(lines[0]) as { ids: number[] };
    const rows = lines.slice(1).map((l) => JSON.parse(l) as { step: number; m: number[] });
    assert.equal(header.ids.length, SAMPLE);
    assert.deepEqual(
      rows.map((r) => r.step),
      [2, 4, 6, 8, 10],
    );
    assert.equal(await page.locator('[data-chart="pairs"] circle.dot').count(), SAMPLE);
    assert.match(await page.locator("#pair-step-value").innerText(), /step 10 of 10/);
    const fitted = rows.at(-1)!.m.filter((m) => m > 0).length;
    assert.match(await page.locator('[data-chart="pairs"]').innerText(), new RegExp(`${fitted}/${SAMPLE} fitted`));
    assert.equal(
      await page.locator('[data-chart="pairs"] circle.dot[fill="#2ca02c"]').count(),
      fitted,
      "green: fitted",
    );
    // The slider's first position is the first logged step.
    await page.fill("#pair-step", "0");
    await page.waitForFunction(() => /step 2 of 10/.test(document.getElementById("pair-step-value")!.textContent!));
    assert.equal(await page.locator('[data-chart="pairs"] circle.dot').count(), SAMPLE);
    await page.fill("#pair-step", String(rows.length - 1));
    await page.selectOption("#pair-colour", "progress");
    await page.waitForFunction(() => /first fitted/.test(document.querySelector(".legend-note")!.textContent!));
    // The table: the ten largest margin changes, largest first.
    const changes = rows
      .at(-1)!
      .m.map((m, i) => Math.abs(m - rows[0].m[i]))
      .sort((a, b) => b - a)
      .slice(0, 10);
    const shown = await page.locator("table.moved tr td:nth-child(4)").allInnerTexts();
    assert.equal(shown.length, 10);
    shown.forEach((t, k) =>
      assert.ok(
        Math.abs(Math.abs(Number(t)) - changes[k]) <= 1e-3 * Math.max(1, changes[k]),
        `row ${k}: ${t} vs ${changes[k]}`,
      ),
    );
    await page.close();
  });

  it("the export opens offline with every request blocked, and none is attempted", async () => {
    const file = join(root, "report.html");
    const r = spawnSync(process.execPath, [CLI, "dashboard", trained, writing, notRun, "--export", file], {
      encoding: "utf8",
      env: { ...process.env, OMP_NUM_THREADS: "1" },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /not a training run/, "what is missing is said on the console too");
    const html = readFileSync(file, "utf8");
    assert.doesNotMatch(html, /\b(src|href)=["']?(https?:)?\/\//i, "no external resource");
    const page = await context.newPage();
    const attempted: string[] = [];
    page.on("request", (req) => {
      if (!req.url().startsWith("file:")) attempted.push(req.url());
    });
    await page.route("**/*", (route) => (route.request().url().startsWith("file:") ? route.continue() : route.abort()));
    await page.goto(pathToFileURL(file).href);
    await page.waitForSelector('[data-chart="pairs"] circle.dot');
    const drawn = await drawnPoints(page);
    assert.deepEqual(
      pick(drawn, "omni-dpo-run"),
      expectedPoints(MetricsSink.read(join(trained, "metrics.jsonl")), "omni-dpo-run"),
    );
    assert.equal(drawn["loss|dpo-writing"], 5);
    assert.equal(await page.locator('[data-chart="pairs"] circle.dot').count(), SAMPLE);
    assert.match(await page.locator("#connection").innerText(), /exported/);
    const shot = await page.screenshot({ path: join(root, "export.png"), fullPage: true });
    assert.deepEqual(attempted, [], "no network request");
    await page.close();
    const check = await context.newPage();
    const colours = await distinctColours(check, shot);
    assert.ok(colours > 20, `the export's screenshot has ${colours} colours: blank?`);
    await check.close();
  });

  it("the served page draws the charts from its own copy of the runs' state, with the event stream blocked", async () => {
    // Two runs whose eval accuracy differs by rounding noise: one chart, both mid-plot, distinct ticks.
    const dirs = ["still-a", "still-b"].map((name, i) => {
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      const rows = [1, 2, 3].map((s) => ({ ...writingRow(s), "eval_rewards/accuracies": 0.75 + i * 1e-10 }));
      writeFileSync(join(dir, "metrics.jsonl"), rows.map((r) => JSON.stringify(r) + "\n").join(""));
      return dir;
    });
    const still = await startDashboard(dirs, { intervalMs: 100 });
    const page = await context.newPage();
    try {
      let streamAsked = false;
      await page.route("**/events", (route) => {
        streamAsked = true;
        return route.abort();
      });
      await page.goto(still.url);
      await page.waitForFunction(() => Number(document.body.dataset.rendered) > 0);
      assert.equal(await page.evaluate(() => document.body.dataset.updates), "2", "the page's own two runs");
      const drawn = await drawnPoints(page);
      assert.equal(drawn["loss|still-a"], 3);
      assert.equal(drawn["loss|still-b"], 3);
      assert.equal(await page.locator('[data-chart="loss"] .empty').count(), 0);
      assert.match(await page.locator(".run").first().innerText(), /still-a/);
      const chart = page.locator('[data-chart="eval_accuracies"] svg');
      const ticks = await chart.locator("text.y-tick").allTextContents();
      assert.ok(ticks.length >= 2 && new Set(ticks).size === ticks.length, `tick labels ${ticks.join(", ")}`);
      const cy = (await chart.locator("circle.pt").evaluateAll((cs) => cs.map((c) => c.getAttribute("cy")))).map(
        Number,
      );
      assert.equal(cy.length, 6);
      assert.ok(Math.max(...cy) - Math.min(...cy) < 2, `the runs are ${Math.max(...cy) - Math.min(...cy)} px apart`);
      assert.ok(streamAsked, "the page did ask for the stream");
    } finally {
      await page.close();
      await still.close();
    }
  });

  it("values from the run's files cannot inject script, live or exported: they are type-checked and shown escaped", async () => {
    const payload = "<img src=x onerror=window.pwned=1>";
    // Step counts in every file the run's state reads from, and a pair log's ids, holding markup.
    const hostile = join(root, "hostile");
    mkdirSync(join(hostile, "checkpoint-1"), { recursive: true });
    // A row's text closing the page's <script> (the runs' state is inline in the page, live and exported).
    const closer = "</script><script>window.pwned=2</script><!--";
    writeFileSync(
      join(hostile, "metrics.jsonl"),
      [1, 2].map((s) => JSON.stringify({ ...writingRow(s), note: closer }) + "\n").join(""),
    );
    writeFileSync(join(hostile, "train_results.json"), "{}");
    writeFileSync(join(hostile, "trainer_state.json"), JSON.stringify({ global_step: payload, max_steps: payload }));
    writeFileSync(
      join(hostile, "checkpoint-1", "omni_dpo_state.json"),
      JSON.stringify({ globalStep: 1, totalSteps: payload }),
    );
    writeFileSync(
      join(hostile, PAIR_LOG_FILE),
      JSON.stringify({ pair_log: 1, ids: [0, 1], loss: "dpo", total_steps: payload }) + "\n",
    );
    const hostileIds = join(root, "hostile-ids");
    mkdirSync(hostileIds);
    writeFileSync(join(hostileIds, "metrics.jsonl"), JSON.stringify(writingRow(1)) + "\n");
    writeFileSync(
      join(hostileIds, PAIR_LOG_FILE),
      [
        JSON.stringify({ pair_log: 1, ids: [0, payload], loss: payload, total_steps: 4 }),
        JSON.stringify({ step: 1, epoch: 0, m: [0.5, -0.5] }),
      ].join("\n") + "\n",
    );
    const file = join(root, "hostile.html");
    const r = spawnSync(process.execPath, [CLI, "dashboard", hostile, hostileIds, "--export", file], {
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    const live = await startDashboard([hostile, hostileIds], { intervalMs: 100 });
    try {
      for (const url of [live.url, pathToFileURL(file).href]) {
        const page = await context.newPage();
        await page.goto(url);
        await page.waitForFunction(
          () => document.querySelectorAll(".run").length === 2 && Number(document.body.dataset.rendered) > 0,
        );
        await page.waitForTimeout(300); // time for a broken image's onerror to fire
        assert.equal(
          await page.evaluate(() => (window as unknown as { pwned?: number }).pwned),
          undefined,
          `script ran at ${url}`,
        );
        assert.equal(await page.locator("#dashboard img").count(), 0, `markup injected at ${url}`);
        const text = await page.locator("#runs").innerText();
        for (const field of ["max_steps", "global_step", "totalSteps"]) {
          assert.ok(
            text.includes(`'${field}' is not a whole number of steps (${JSON.stringify(payload)}); ignored`),
            `${field}: ${text}`,
          );
        }
        assert.ok(text.includes(`the header's 'total_steps' is not a whole number (${JSON.stringify(payload)})`), text);
        assert.ok(text.includes("the header's 'ids' are not all pair indices"), text);
        assert.match(text, /hostile finished step 2/);
        await page.close();
      }
    } finally {
      await live.close();
    }
  });
});

// Plain HTTP, no browser: these run wherever the suite runs.
describe("omni-dpo dashboard's server over plain HTTP", () => {
  let dir: string;
  let plain: DashboardServer;
  before(async () => {
    dir = tempDir("omni-dpo-dashboard-http-");
    const rows = [1, 2].map((s) => ({ ...writingRow(s), note: "</script><script>alert(1)</script>" }));
    writeFileSync(join(dir, "metrics.jsonl"), rows.map((r) => JSON.stringify(r) + "\n").join(""));
    plain = await startDashboard([dir], { intervalMs: 150 });
  });
  after(async () => {
    await plain?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("bad requests do not stop the server; a non-loopback --host needs --allow-remote", async () => {
    assert.equal((await fetch(new URL("nope", plain.url))).status, 404);
    assert.equal((await fetch(plain.url, { method: "POST", body: "x" })).status, 405);
    // Another Host (a rebinding web page) is refused.
    const status = await new Promise<number>((resolve, reject) => {
      request(plain.url, { headers: { host: "evil.example" } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      })
        .on("error", reject)
        .end();
    });
    assert.equal(status, 403);
    const page = await fetch(plain.url);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<div id="dashboard">/);
    // The runs' state is in the page, as JSON that cannot end its <script> element.
    assert.ok(html.includes(`"rewards/margins":${writingRow(2)["rewards/margins"]}`), "the rows are inline");
    assert.equal(html.match(/<\/script/gi)?.length, 1, "one </script>: the page's own");
    const r = spawnSync(process.execPath, [CLI, "dashboard", dir, "--host", "0.0.0.0"], {
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--allow-remote/);
  });
});

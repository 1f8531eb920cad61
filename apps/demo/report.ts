// The demo's report: a console summary, the `--json` object, and a self-contained HTML page: the
// dashboard's export of the demo's runs (one charting code path) between the demo's own
// sections: results per pipeline with paired intervals, the learning-rate sweep, the labels'
// quality and the starting policy's w_qual-against-w_perf scatter.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Comparison, DemoResult, MethodResult, PipelineResult, RewardModelReport } from "./arith.js";
import type { Quantiles } from "./statistics.js";
import { barChart, esc, lineChart, PALETTE, pearson, scatterPlot } from "../../src/report/svg.js";
import { dashboardHtml, readRuns } from "../../src/report/dashboard-page.js";

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const pm = (s: { mean: number; std: number; runs: number[] }) =>
  `${pct(s.mean)} ± ${(100 * s.std).toFixed(1)} (${s.runs.length} runs)`;
const points = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}`;
const interval = (c: Comparison) => `${points(c.mean_diff)} [${points(c.ci95[0])}, ${points(c.ci95[1])}]`;
const labelOf = (p: PipelineResult, name: string) =>
  name === "sft" ? "SFT" : (p.methods.find((m) => m.name === name)?.label ?? name);

/** The sentence the console prints for a comparison: the difference, its interval, and whether it is beyond noise. */
export function comparisonSentence(p: PipelineResult, c: Comparison): string {
  const words = c.verdict === "within noise" ? "within noise" : `${c.verdict} beyond noise`;
  return `${labelOf(p, c.a)} - ${labelOf(p, c.b)}: ${interval(c)} points (95% CI): ${words}`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows
    .map((row, k) => {
      const line = row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
      return k === 0 ? `${line}\n${widths.map((w) => "-".repeat(w)).join("  ")}` : line;
    })
    .join("\n");
}

const vsDpo = (p: PipelineResult, m: MethodResult) => p.comparisons.find((c) => c.a === m.name && c.b === "dpo");
const vsSft = (p: PipelineResult, m: MethodResult) => p.comparisons.find((c) => c.a === m.name && c.b === "sft");

/** Mean over pair seeds of a number per seed. */
const meanOver = <T>(xs: T[], f: (x: T) => number) => xs.reduce((s, x) => s + f(x), 0) / Math.max(xs.length, 1);

const num = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
const fiveNumbers = (q: Quantiles) =>
  `median ${num(q.median)} (10th-90th percentile ${num(q.p10)} to ${num(q.p90)}, quartiles ${num(q.p25)} to ${num(q.p75)})`;

/**
 * The rm pipeline's reward model in sentences: its held-out accuracy, its gaps, how its labels
 * compare with the judge's, and the w_qual they produce at the η used (and why that η).
 */
export function rewardModelLines(rm: RewardModelReport): string[] {
  const seeds = rm.per_pair_seed;
  const auc = seeds.map((s) => s.judge.gap_auc).filter((x): x is number => x !== null);
  const why =
    rm.scale === "raw" && rm.eta === 1
      ? "at η 1 on its raw scores, w_qual = σ(r_w − r_l) is the reward model's own probability that the label is right"
      : `at η ${rm.eta} on ${rm.scale === "raw" ? "raw" : rm.scale === "std" ? "std-scaled" : "z-normalised"} scores`;
  return [
    `reward model: trained on ${rm.train_pairs} judge-labelled pairs of prompts no other stage sees (${rm.train_seconds.toFixed(0)} s); ` +
      `orders ${pct(rm.heldout_accuracy)} of ${rm.heldout_pairs} held-out pairs as the judge does`,
    `its best-vs-worst gaps (reward-model units), first pair seed: ${fiveNumbers(seeds[0].gap)}`,
    `against the judge: label backwards in ${pct(meanOver(seeds, (s) => s.judge.backwards))} of pairs, judge tied in ` +
      `${pct(meanOver(seeds, (s) => s.judge.tied))}; ` +
      (auc.length
        ? `the gap tells a label the judge agrees with from a backwards one with AUC ${meanOver(auc, (x) => x).toFixed(2)}`
        : "no backwards label, so no AUC"),
    `w_qual of the training pairs (first pair seed), ${why}: ${fiveNumbers(rm.w_qual)}`,
  ];
}

function dataLine(p: PipelineResult): string {
  const auc = p.data.map((d) => d.labels.gap_auc).filter((x): x is number => x !== null);
  return (
    `${Math.round(meanOver(p.data, (d) => d.pairs))} pairs per pair seed from ${p.data[0]?.prompts ?? 0} prompts; ` +
    `chosen answer wrong in ${pct(meanOver(p.data, (d) => d.labels.chosen_wrong))}, label backwards (chosen wrong, rejected right) in ${pct(meanOver(p.data, (d) => d.labels.flipped))}; ` +
    (auc.length
      ? `the score gap tells a right label from a backwards one with AUC ${meanOver(auc, (x) => x).toFixed(2)}`
      : "no backwards label, so no AUC (the verifier picks every chosen)")
  );
}

/** The console summary: per pipeline, the table, the comparisons in words, the sweep. */
export function demoSummary(r: DemoResult): string {
  return r.pipelines
    .map((p) => {
      const rows = [
        ["method", "lr", "held-out accuracy", "vs SFT (points, 95% CI)", "vs DPO (points, 95% CI)"],
        ["SFT (start)", "", pct(p.sft_accuracy.mean), "", ""],
        ...p.methods.map((m) => {
          const d = vsDpo(p, m);
          const s = vsSft(p, m);
          return [
            m.label,
            m.learning_rate.toExponential(1),
            pm(m.heldout_accuracy),
            s ? interval(s) : "",
            d ? interval(d) : "",
          ];
        }),
      ];
      const multiples = [...new Set(p.lr_sweep.map((s) => s.lr_multiple))].sort((a, b) => a - b);
      const sweep = [
        ["lr sweep (x DPO's lr)", ...multiples.map((k) => `${Number(k.toPrecision(3))}x`)],
        ...p.methods.map((m) => [
          m.label,
          ...multiples.map((k) => {
            const pt = p.lr_sweep.find((s) => s.name === m.name && s.lr_multiple === k);
            return pt ? pct(pt.heldout_accuracy.mean) : "";
          }),
        ]),
      ];
      return [
        `== ${p.name} pipeline ==`,
        ...(p.reward_model ? rewardModelLines(p.reward_model) : []),
        dataLine(p),
        "",
        table(rows),
        "",
        ...p.comparisons.map((c) => comparisonSentence(p, c)),
        "",
        table(sweep),
      ].join("\n");
    })
    .join("\n\n");
}

/** The report's runs, by directory, as the dashboard names them. */
export function demoRuns(r: DemoResult): { dir: string; name: string }[] {
  return r.pipelines.flatMap((p) => p.methods.flatMap((m) => m.curves.map((c) => ({ dir: c.dir, name: c.name }))));
}

function pipelineSection(p: PipelineResult): string {
  const head =
    "<tr><th>method</th><th>lr (validation)</th><th>held-out accuracy (mean ± std)</th><th>runs</th><th>vs SFT, points [95% CI]</th><th>vs DPO, points [95% CI]</th><th>validation accuracy per lr</th></tr>";
  const rows = p.methods
    .map((m) => {
      const d = vsDpo(p, m);
      const s = vsSft(p, m);
      return (
        `<tr><td>${esc(m.label)}</td><td>${m.learning_rate}</td><td>${pm(m.heldout_accuracy)}</td><td>${m.heldout_accuracy.runs.map(pct).join(", ")}</td>` +
        `<td>${s ? `${interval(s)} ${s.verdict}` : ""}</td><td>${d ? `${interval(d)} ${d.verdict}` : ""}</td>` +
        `<td>${m.validation.map((v) => `${v.learning_rate}: ${pct(v.accuracy)}`).join(", ")}</td></tr>`
      );
    })
    .join("\n");
  const bars = [
    { label: "SFT", value: p.sft_accuracy.mean, color: "#999" },
    ...p.methods.map((m, i) => ({
      label: m.label,
      value: m.heldout_accuracy.mean,
      error: m.heldout_accuracy.std,
      color: PALETTE[i % PALETTE.length],
    })),
  ];
  const series = p.methods.map((m, i) => ({
    name: m.label,
    color: PALETTE[i % PALETTE.length],
    points: p.lr_sweep
      .filter((s) => s.name === m.name)
      .sort((a, b) => a.lr_multiple - b.lr_multiple)
      .map((s): [number, number] => [s.lr_multiple, s.heldout_accuracy.mean]),
  }));
  const corr = pearson(
    p.weights.map((w) => w.w_qual),
    p.weights.map((w) => w.w_perf),
  );
  return `<section id="pipeline-${p.name}"><h2>The ${p.name} pipeline</h2>
${
  p.reward_model
    ? `<ul>${rewardModelLines(p.reward_model)
        .map((l) => `<li>${esc(l)}</li>`)
        .join("")}</ul>`
    : ""
}
<p>${esc(dataLine(p))}.</p>
<table>${head}
<tr><td>SFT (start)</td><td></td><td>${pct(p.sft_accuracy.mean)}</td><td></td><td></td><td></td><td></td></tr>
${rows}</table>
<ul>${p.comparisons.map((c) => `<li>${esc(comparisonSentence(p, c))}</li>`).join("")}</ul>
<div class="charts">${barChart(`${p.name}: greedy accuracy on held-out problems (mean ± std over runs)`, "accuracy", bars, [0, 1])}
${lineChart(`${p.name}: held-out accuracy against learning rate`, "learning rate (multiple of DPO's validation choice)", "held-out accuracy", series)}
${scatterPlot(
  `${p.name}: w_qual against w_perf of the training pairs (starting policy)`,
  "w_qual = σ(η(S_w − S_l))",
  "w_perf = (1 − σ(β·Δπ − τ_ref))^γ",
  p.weights.map((w) => ({
    x: w.w_qual,
    y: w.w_perf,
    color: !w.correct_chosen ? "#ff7f0e" : w.correct_rejected ? "#d62728" : "#1f77b4",
  })),
  { note: `Pearson r = ${Number.isFinite(corr) ? corr.toFixed(2) : "n/a"}` },
)}</div>
<p>Scatter: each dot is a training pair of the first pair seed (orange: the chosen answer is wrong; red: the rejected answer is right too).</p></section>`;
}

/** The report: the dashboard's export of the demo's runs, between the demo's own sections. */
export function demoHtml(r: DemoResult): string {
  const s = r.settings;
  const before = `<h1>omni-dpo demo: preference training on arithmetic</h1>
<p>A small Llama-style model, SFT-trained on worked solutions, samples ${s.samples} responses per prompt at T=${s.temperature};
a verifier checks each final answer and a process judge (Gaussian noise σ=${s.judge_noise}) scores the steps 0–10. The math pipeline pairs them by the
reference's rules (chosen: correct, score &gt; 6, highest; rejected: lowest, at most chosen − 2); the text pipeline by the judge alone (best against worst);
the rm pipeline by a small reward model trained on judge-labelled pairs of other prompts (best against worst of its scores).
Every method starts from the same SFT model; its learning rate is the best on a validation split (tuning runs on their own training seed), its accuracy is
measured on held-out problems over training seeds × pair-building seeds. Differences are paired (same seeds, same problems); their 95% intervals count
both the seeds' and the problems' noise. Wall time ${r.wall_seconds.toFixed(0)} s.</p>
<section id="results"><h2>Results</h2></section>
${r.pipelines.map(pipelineSection).join("\n")}
<section id="curves"><h2>Training runs (training seed 0, one per method and pair seed)</h2>
<p>The same page as <code>omni-dpo dashboard DIR/runs/* --export</code>: curves per run, and each Omni-DPO run's sampled pairs over training.</p>`;
  const after = `</section>
<section id="settings"><h2>Settings</h2><pre>${esc(JSON.stringify(r.settings, null, 2))}</pre></section>`;
  const runs = demoRuns(r);
  return dashboardHtml({
    title: "omni-dpo demo report",
    live: false,
    before,
    after,
    generated: "by omni-dpo demo",
    updates: readRuns(
      runs.map((x) => x.dir),
      runs.map((x) => x.name),
    ),
  });
}

export function writeDemoReport(r: DemoResult): { html: string; json: string } {
  const html = join(r.outDir, "report.html");
  const json = join(r.outDir, "results.json");
  writeFileSync(html, demoHtml(r));
  writeFileSync(json, JSON.stringify(demoJson(r), null, 2) + "\n");
  return { html, json };
}

function pipelineJson(p: PipelineResult): Record<string, unknown> {
  return {
    pipeline: p.name,
    sft_accuracy: { mean: p.sft_accuracy.mean, std: p.sft_accuracy.std },
    methods: p.methods.map((m) => ({
      name: m.name,
      learning_rate: m.learning_rate,
      heldout_accuracy: m.heldout_accuracy,
      cells: m.cells,
      validation: m.validation,
    })),
    comparisons: p.comparisons.map((c) => ({
      a: c.a,
      b: c.b,
      mean_diff: c.mean_diff,
      ci95: c.ci95,
      verdict: c.verdict,
    })),
    lr_sweep: p.lr_sweep.map((s) => ({
      name: s.name,
      lr_multiple: s.lr_multiple,
      learning_rate: s.learning_rate,
      heldout_accuracy: s.heldout_accuracy.mean,
      runs: s.heldout_accuracy.runs,
    })),
    data: p.data,
    ...(p.reward_model && { reward_model: p.reward_model }),
  };
}

/**
 * The `--json` object: `pipelines[]`, one per pipeline run; with a single pipeline its fields
 * are also the top level's (so `--pipeline math` reads as one experiment).
 */
export function demoJson(r: DemoResult): Record<string, unknown> {
  const pipelines = r.pipelines.map(pipelineJson);
  return {
    ...(pipelines.length === 1 ? pipelines[0] : {}),
    pipelines,
    settings: r.settings,
    wall_seconds: r.wall_seconds,
  };
}

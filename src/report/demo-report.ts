// The demo's report: a console table and a self-contained HTML page: the dashboard's export of
// the demo's runs (one charting code path), with the demo's results, held-out accuracy and the
// starting policy's w_qual-against-w_perf scatter around it.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BuildStats } from "../data/build.js";
import type { MetricRow } from "../train/metrics.js";
import { barChart, esc, PALETTE, pearson, scatterPlot } from "./svg.js";
import { dashboardHtml, readRuns } from "./dashboard-page.js";

export interface Spread { mean: number; std: number; runs: number[] }
export interface MethodResult {
  name: string; label: string; hyperparameters: { learning_rate: number; beta: number };
  heldout_accuracy: Spread; pairwise_accuracy: Spread; validation_accuracy: number | null;
  /** Each seed's run: its output_dir and its metrics rows. */
  curves: { seed: number; dir: string; rows: MetricRow[] }[];
}
export interface DemoResult {
  sft_accuracy: Spread;
  sft_pairwise_accuracy: number;
  methods: MethodResult[];
  data: { train: BuildStats; heldout: BuildStats; settings: Record<string, unknown> };
  /** Per training pair: w_qual and the starting policy's w_perf (the paper's decoupling view). */
  weights: { w_qual: number; w_perf: number; correct_rejected: boolean }[];
  wall_seconds: number;
  outDir: string;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const pm = (s: { mean: number; std: number }) => `${pct(s.mean)} ± ${(100 * s.std).toFixed(1)}`;

export function demoTable(r: DemoResult): string {
  const rows = [
    ["method", "lr", "beta", "held-out accuracy", "pairwise accuracy", "validation"],
    ["SFT (start)", "", "", pct(r.sft_accuracy.mean), pct(r.sft_pairwise_accuracy), ""],
    ...r.methods.map((m) => [m.label, String(m.hyperparameters.learning_rate), String(m.hyperparameters.beta), pm(m.heldout_accuracy), pm(m.pairwise_accuracy),
      m.validation_accuracy === null ? "" : pct(m.validation_accuracy)]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row, k) => {
    const line = row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
    return k === 0 ? `${line}\n${widths.map((w) => "-".repeat(w)).join("  ")}` : line;
  }).join("\n");
}

/** The demo's training runs, by directory, as the dashboard names them ("DPO seed 0"). */
export function demoRuns(r: DemoResult): { dir: string; name: string }[] {
  return r.methods.flatMap((m) => m.curves.map((c) => ({ dir: c.dir, name: `${m.label} seed ${c.seed}` })));
}

/** The report: the dashboard's export of the demo's runs, between the demo's own sections (results, held-out accuracy, the starting policy's weights, settings). */
export function demoHtml(r: DemoResult): string {
  const bars = [
    { label: "SFT", value: r.sft_accuracy.mean, color: "#999" },
    ...r.methods.map((m, i) => ({ label: m.label, value: m.heldout_accuracy.mean, error: m.heldout_accuracy.std, color: PALETTE[i % PALETTE.length] })),
  ];
  const corr = pearson(r.weights.map((w) => w.w_qual), r.weights.map((w) => w.w_perf));
  const table = `<table><tr><th>method</th><th>lr</th><th>beta</th><th>held-out accuracy (mean ± std)</th><th>runs</th><th>pairwise accuracy</th><th>validation accuracy</th></tr>
<tr><td>SFT (start)</td><td></td><td></td><td>${pct(r.sft_accuracy.mean)}</td><td></td><td>${pct(r.sft_pairwise_accuracy)}</td><td></td></tr>
${r.methods.map((m) => `<tr><td>${esc(m.label)}</td><td>${m.hyperparameters.learning_rate}</td><td>${m.hyperparameters.beta}</td><td>${pm(m.heldout_accuracy)}</td>` +
    `<td>${m.heldout_accuracy.runs.map(pct).join(", ")}</td><td>${pm(m.pairwise_accuracy)}</td><td>${m.validation_accuracy === null ? "" : pct(m.validation_accuracy)}</td></tr>`).join("\n")}</table>`;
  const s = r.data.train;
  const before = `<h1>omni-dpo demo: preference training on arithmetic</h1>
<p>A small Llama-style model, SFT-trained on worked solutions, samples ${r.data.settings.samples} responses per prompt at T=${r.data.settings.temperature};
a verifier checks each final answer and a process judge (Gaussian noise σ=${r.data.settings.judge_noise}) scores the steps 0–10.
Pairs follow the reference's rules (chosen: correct, score &gt; ${r.data.settings.min_chosen_score}, highest; rejected: lowest, at most chosen − ${r.data.settings.margin}).
Every method starts from the same SFT model and trains on the same pairs; hyperparameters come from a validation split, accuracy from held-out problems. Wall time ${r.wall_seconds.toFixed(0)} s.</p>
<section id="results"><h2>Results</h2>${table}
<p>Training pairs: ${s.pairs} from ${s.prompts} prompts (${s.identicalDropped} dropped with identical samples, ${s.noPair} without a qualifying pair; ${pct(s.correctShare)} of samples correct). Held-out pairs: ${r.data.heldout.pairs}.</p></section>
<section id="accuracy"><h2>Held-out accuracy</h2><div class="charts">${barChart("Greedy accuracy on held-out problems (mean ± std over seeds)", "accuracy", bars, [0, 1])}</div></section>
<section id="curves"><h2>Training runs (one per method and seed)</h2>
<p>The same page as <code>omni-dpo dashboard DIR/runs/* --export</code>: curves per run, and each Omni-DPO run's sampled pairs over training.</p>`;
  const after = `</section>
<section id="decoupling"><h2>Data quality against learning difficulty (the starting policy)</h2><div class="charts">
${scatterPlot("w_qual against w_perf of the training pairs (starting policy)", "w_qual = σ(η(S_w − S_l))", "w_perf = (1 − σ(β·Δπ − τ_ref))^γ",
    r.weights.map((w) => ({ x: w.w_qual, y: w.w_perf, color: w.correct_rejected ? "#d62728" : "#1f77b4" })), { note: `Pearson r = ${Number.isFinite(corr) ? corr.toFixed(2) : "n/a"}` })}
</div><p>Each dot is a training pair (red: the rejected answer was also correct). The paper's point: the score margin (quality) and the policy's own margin (difficulty) are only weakly related, so Omni-DPO weighs pairs by both.</p></section>
<section id="settings"><h2>Settings</h2><pre>${esc(JSON.stringify(r.data.settings, null, 2))}</pre></section>`;
  const runs = demoRuns(r);
  return dashboardHtml({
    title: "omni-dpo demo report", live: false, before, after, generated: "by omni-dpo demo",
    updates: readRuns(runs.map((x) => x.dir), runs.map((x) => x.name)),
  });
}

export function writeDemoReport(r: DemoResult): { html: string; json: string } {
  const html = join(r.outDir, "report.html");
  const json = join(r.outDir, "results.json");
  writeFileSync(html, demoHtml(r));
  writeFileSync(json, JSON.stringify(demoJson(r), null, 2) + "\n");
  return { html, json };
}

/** The `--json` shape the issue specifies. */
export function demoJson(r: DemoResult): Record<string, unknown> {
  return {
    sft_accuracy: { mean: r.sft_accuracy.mean, std: r.sft_accuracy.std },
    methods: r.methods.map((m) => ({
      name: m.name, heldout_accuracy: m.heldout_accuracy, pairwise_accuracy: { mean: m.pairwise_accuracy.mean, std: m.pairwise_accuracy.std },
      hyperparameters: m.hyperparameters,
    })),
    wall_seconds: r.wall_seconds,
  };
}

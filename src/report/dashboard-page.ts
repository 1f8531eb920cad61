// The dashboard's one page, live (it subscribes to the server's events) or exported (the runs'
// data inline): chartKit and dashboardApp inlined as script, no other resource, so the export
// opens offline and the live page needs nothing from the network.
import { chartKit, esc } from "./svg.js";
import { dashboardApp, type ChartSpec, type DashboardConfig } from "./dashboard-client.js";
import { RunReader, type RunUpdate } from "./run-data.js";
import type { EvalResult } from "./eval-results.js";

/** The metric charts, by the names the trainer logs (metrics.jsonl). */
export const DASHBOARD_CHARTS: ChartSpec[] = [
  { id: "loss", title: "Training loss", yLabel: "loss", keys: ["loss"], empty: "no run logged a loss yet" },
  {
    id: "eval_gen",
    title: "Generation eval (accuracy, win rate)",
    yLabel: "share",
    keys: ["eval_gen_accuracy", "eval_gen_win_rate"],
    empty: "no run logged eval_gen_accuracy or eval_gen_win_rate (eval_generation_file)",
  },
  {
    id: "rounds",
    title: "Iterate rounds (x: round): eval accuracy or win rate, train loss",
    yLabel: "per round",
    keys: ["round_eval_accuracy", "round_eval_win_rate", "round_train_loss"],
    empty: "no omni-dpo iterate output_dir (iterate.json)",
  },
  {
    id: "margins",
    title: "Reward margin",
    yLabel: "rewards/margins",
    keys: ["rewards/margins"],
    empty: "no run logged rewards/margins",
  },
  {
    id: "accuracies",
    title: "Reward accuracy",
    yLabel: "rewards/accuracies",
    keys: ["rewards/accuracies"],
    empty: "no run logged rewards/accuracies",
  },
  {
    id: "logps",
    title: "Policy log-probs (chosen, rejected)",
    yLabel: "log-prob",
    keys: ["logps/chosen", "logps/rejected"],
    empty: "no run logged logps",
  },
  {
    id: "learning_rate",
    title: "Learning rate",
    yLabel: "learning rate",
    keys: ["learning_rate"],
    empty: "no run logged a learning rate",
  },
  {
    id: "grad_norm",
    title: "Gradient norm (before clipping)",
    yLabel: "grad norm",
    keys: ["grad_norm"],
    empty: "no run logged grad_norm",
  },
  {
    id: "tokens_per_second",
    title: "Throughput",
    yLabel: "tokens/s",
    keys: ["tokens_per_second"],
    empty: "no run logged tokens_per_second",
  },
  {
    id: "weights",
    title: "Omni-DPO batch means",
    yLabel: "mean",
    keys: ["w_qual", "w_perf", "nll_gate"],
    empty: "no Omni-DPO run (w_qual, w_perf, nll_gate are its metrics)",
  },
  {
    id: "eval_loss",
    title: "Eval loss",
    yLabel: "eval_loss",
    keys: ["eval_loss"],
    empty: "no eval rows: set eval_steps with an eval split (test_split_size or eval_file)",
  },
  {
    id: "eval_accuracies",
    title: "Eval reward accuracy",
    yLabel: "eval_rewards/accuracies",
    keys: ["eval_rewards/accuracies"],
    empty: "no eval rows",
  },
  {
    id: "eval_margins",
    title: "Eval reward margin",
    yLabel: "eval_rewards/margins",
    keys: ["eval_rewards/margins"],
    empty: "no eval rows",
  },
];

/** JSON safe inside a <script> element: no `<` (so no `</script>`), no line separators JavaScript rejects. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

export interface PageOptions {
  title?: string;
  live: boolean;
  /** The runs' data: an export's, or the live page's state when served (the event stream then replaces it). */
  updates?: RunUpdate[];
  /** HTML before and after the dashboard (the demo's own sections). */
  before?: string;
  after?: string;
  /** When or by what the export was made (shown on the page); default: now. */
  generated?: string;
  /** Evaluation results to show as a table (and, several, as lines). */
  evals?: EvalResult[];
}

export const DASHBOARD_STYLE = `body{font-family:sans-serif;max-width:1400px;margin:20px auto;padding:0 16px;color:#222}
.controls{display:flex;flex-wrap:wrap;gap:18px;align-items:center;margin:8px 0}
.charts{display:flex;flex-wrap:wrap;gap:10px}.chart{border:1px solid #eee}.empty{width:420px;padding:8px;color:#666}
.run{border:1px solid #ddd;border-radius:4px;padding:6px 10px;margin:6px 0}.swatch{display:inline-block;width:10px;height:10px;margin-right:6px}
.state{padding:1px 6px;border-radius:3px;background:#eee}.state-running{background:#cfe8ff}.state-finished{background:#d4f4d4}.state-interrupted{background:#ffe0c0}
.state-not-a-run{background:#ffd0d0}.detail{color:#666;font-size:12px}.problems{color:#a33}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}td:first-child,th:first-child{text-align:left}
caption{text-align:left;font-weight:600;margin-bottom:4px}.pair-view{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.legend-note{font-size:12px;padding:4px}#tip{position:absolute;background:#222;color:#fff;font-size:12px;padding:3px 6px;border-radius:3px;pointer-events:none}
circle.pt{opacity:.35}circle.pt:hover{opacity:1}section{margin:24px 0}code{background:#f4f4f4;padding:1px 4px}`;

export function dashboardHtml(o: PageOptions): string {
  const config: DashboardConfig = {
    live: o.live,
    charts: DASHBOARD_CHARTS,
    updates: o.updates ?? [],
    generated: o.generated ?? new Date().toISOString(),
    evals: o.evals ?? [],
  };
  const title = o.title ?? "omni-dpo dashboard";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${DASHBOARD_STYLE}</style></head><body>
${o.before ?? `<h1>${esc(title)}</h1>`}
<div id="dashboard"><noscript>This page draws its charts with its inline script.</noscript></div>
${o.after ?? ""}
<script>"use strict";
const kit = (${chartKit.toString()})();
(${dashboardApp.toString()})(kit, ${scriptJson(config)});
</script>
</body></html>
`;
}

/** Everything in the run directories now, as the updates an export carries (a name per run: its directory's name unless given). */
export function readRuns(dirs: string[], names?: string[]): RunUpdate[] {
  return dirs.map((dir, i) => {
    const reader = new RunReader(dir, i, names?.[i]);
    reader.poll();
    return reader.snapshot();
  });
}

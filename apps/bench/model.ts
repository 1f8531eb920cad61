// `omni-dpo bench model`: forward throughput of a GPT-2-small-shaped (124M) random model at
// sequence 512, batch 2, beside the same forward in PyTorch (Python) in the same run.
import { join } from "node:path";
import { createModel, torch } from "../../src/index.js";
import { packageRoot } from "../../src/util/package-root.js";
import { NO_TORCH_PYTHON, runPythonJson, torchPython } from "../../src/util/python.js";
import { formatTable, measure, row, type Row } from "./measure.js";

export interface ModelBenchResult {
  rows: Row[];
  threads: number;
  pytorchVersion: string | null;
  note?: string;
}

export function benchModel(options: { quick?: boolean } = {}): ModelBenchResult {
  const shape = { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 };
  const cfg = {
    ...shape,
    batch: 2,
    seq: 512,
    threads: torch.getNumThreads(),
    trials: options.quick ? 1 : 3,
    trial_seconds: options.quick ? 0.1 : 1,
  };
  torch.manualSeed(0);
  const model = createModel({ architectures: ["GPT2LMHeadModel"], ...shape }).eval();
  const ids = torch.randint(0, shape.vocab_size, [cfg.batch, cfg.seq]);
  const ours = torch.noGrad(() =>
    measure(() => model.forward(ids).dispose(), { trials: cfg.trials, trialSeconds: cfg.trial_seconds, warmup: 1 }),
  ).secondsPerIteration;
  ids.dispose();
  model.dispose();

  let theirs: number | null = null;
  let pytorchVersion: string | null = null;
  let note: string | undefined;
  if (torchPython()) {
    const r = runPythonJson<{ torch_version: string; forward_seconds: number }>(
      join(packageRoot(), "apps", "bench", "model.py"),
      cfg,
      { file: true },
    );
    theirs = r.forward_seconds;
    pytorchVersion = r.torch_version;
  } else note = `PyTorch column empty: ${NO_TORCH_PYTHON}`;
  const tokens = cfg.batch * cfg.seq;
  return {
    rows: [
      row(
        `GPT-2 124M forward, batch ${cfg.batch} x seq ${cfg.seq}`,
        "tokens/s",
        tokens / ours,
        theirs === null ? null : tokens / theirs,
        true,
      ),
    ],
    threads: cfg.threads,
    pytorchVersion,
    note,
  };
}

export function formatModelBench(r: ModelBenchResult): string {
  return [
    `${r.threads} threads; PyTorch ${r.pytorchVersion ?? "absent"}`,
    "",
    formatTable(r.rows),
    ...(r.note ? ["", r.note] : []),
  ].join("\n");
}

// The per-pair log a run writes for the dashboard (output_dir/pair_log.jsonl):
//   - pairValues gives per pair what preferenceLoss averages (rewards/margins, w_qual, w_perf,
//     nll_gate), and matches the closed forms computed here from the inputs;
//   - a tiny real Omni-DPO run logs its fixed sample at the pair_logging_steps steps, w_qual
//     equal to sigmoid(eta (S_w - S_l)) of the sampled pairs' own scores, and w_perf to the
//     closed form of the policy margin recovered from the logged margin and the reference's;
//   - a run that stopped after logging a step its last checkpoint does not hold, resumed,
//     writes the same file as one run straight through (no duplicated step, the same values:
//     the resume truncates to the checkpoint's step);
//   - pair_log_samples: 0 writes no pair log.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { pairValues, preferenceLoss } from "../../src/objectives/index.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { PAIR_LOG_FILE, pairSample, type PairLogHeader, type PairLogRow } from "../../src/train/pair-log.js";
import { mixDatasets } from "../../src/data/mixer.js";
import { loadModel } from "../../src/models/auto.js";
import { Tokenizer } from "../../src/text/index.js";
import { tokenizeRecords } from "../../src/data/tokenize.js";
import type { PreferenceRecord } from "../../src/data/records.js";
import { forwardPairs } from "../../src/logprobs/pairs.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

torch.setNumThreads(1);

let root: string;
let model: string;
let data: string;
before(() => {
  root = tempDir("omni-dpo-pairlog-");
  model = writeToyModel(join(root, "model"));
  data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(24));
});
after(() => rmSync(root, { recursive: true, force: true }));

const ETA = 0.7;
const BETA = 2.0;
const TAU_REF = 0.8;
const GAMMA = 2.0;
/** 24 pairs in micro-batches of 4: 6 steps an epoch, 2 epochs = 12 steps; 10 pairs followed, logged every 3 steps. */
function recipe(outputDir: string, extra: Record<string, unknown> = {}) {
  return loadTrainConfig({
    model_name_or_path: model,
    dataset_mixer: { [data]: 1.0 },
    output_dir: join(root, outputDir),
    pref_loss: "uni_dpo",
    beta: BETA,
    uni_dpo_qual_eta: ETA,
    uni_dpo_tau_ref: TAU_REF,
    uni_dpo_perf_gamma: GAMMA,
    uni_dpo_nll_lambda: 0.01,
    uni_dpo_tau_good: 7.0,
    learning_rate: 3e-3,
    num_train_epochs: 2,
    per_device_train_batch_size: 4,
    per_device_eval_batch_size: 4,
    max_length: 64,
    max_prompt_length: 32,
    logging_steps: 2,
    pair_logging_steps: 3,
    pair_log_samples: 10,
    save_steps: 3,
    seed: 5,
    ...extra,
  }).config;
}

function readLog(dir: string): { header: PairLogHeader; rows: PairLogRow[] } {
  const lines = readFileSync(join(root, dir, PAIR_LOG_FILE), "utf8")
    .split("\n")
    .filter((l) => l.trim());
  return {
    header: JSON.parse(lines[0]) as PairLogHeader,
    rows: lines.slice(1).map((l) => JSON.parse(l) as PairLogRow),
  };
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Per record, the reference's (the initial model's) length-normalised chosen minus rejected log-prob. */
function referenceMarginsOf(records: PreferenceRecord[]): number[] {
  const tokenizer = Tokenizer.fromPretrainedSync(model);
  const pairs = tokenizeRecords(records, tokenizer, { maxLength: 64, maxPromptLength: 32, truncationMode: "keep_end" });
  const reference = loadModel(model).requiresGrad_(false);
  try {
    return torch.tidy(() =>
      torch.noGrad(() => {
        const out = forwardPairs(reference, pairs, tokenizer.padTokenId ?? tokenizer.eosTokenId!, true);
        return out.chosen.sub(out.rejected).toArray() as number[]; // [pairs]
      }),
    );
  } finally {
    reference.dispose();
  }
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test("pairValues: per pair what preferenceLoss averages, and the closed forms of margin, w_qual, w_perf and the gate", () => {
  const pc = [-1.2, -0.4, -2.0, -0.9, -1.5],
    pr = [-1.0, -1.6, -0.5, -1.9, -1.5];
  const rc = [-1.1, -0.9, -1.8, -0.7, -1.6],
    rr = [-1.1, -1.2, -0.9, -1.5, -1.4];
  const sc = [8, 6, 9, 7.5, 3],
    sr = [2, 5, 8.5, 1, 2];
  const o = {
    lossType: "omni_dpo" as const,
    beta: 2,
    qualEta: ETA,
    tauRef: 0.8,
    perfGamma: 2,
    nllLambda: 0.01,
    tauGood: 7,
  };
  torch.tidy(() => {
    const t = (xs: number[]) => torch.tensor(xs, { dtype: "float64" });
    const inputs = {
      policyChosenLogps: t(pc),
      policyRejectedLogps: t(pr),
      referenceChosenLogps: t(rc),
      referenceRejectedLogps: t(rr),
      scoreChosen: t(sc),
      scoreRejected: t(sr),
    };
    const v = pairValues(inputs, o);
    const batch = preferenceLoss(inputs, o).metrics;
    const margins = pc.map((_, i) => o.beta * (pc[i] - rc[i] - (pr[i] - rr[i])));
    const wQual = sc.map((s, i) => sigmoid(ETA * (s - sr[i])));
    const wPerf = pc.map((_, i) => (1 - sigmoid(o.beta * (pc[i] - pr[i]) - o.tauRef)) ** o.perfGamma);
    const gate = pc.map((_, i) => (rc[i] > pc[i] && sc[i] >= o.tauGood ? 1 : 0));
    const close = (a: number[], b: number[], what: string) =>
      a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) < 1e-12, `${what}[${i}]: ${x} != ${b[i]}`));
    close(v.margins, margins, "margin");
    close(v.metrics.w_qual as number[], wQual, "w_qual");
    close(v.metrics.w_perf as number[], wPerf, "w_perf");
    assert.deepEqual(v.metrics.nll_gate, gate);
    for (const [name, values] of [
      ["rewards/margins", v.margins],
      ["w_qual", v.metrics.w_qual],
      ["w_perf", v.metrics.w_perf],
      ["nll_gate", v.metrics.nll_gate],
    ] as const) {
      assert.ok(
        Math.abs(mean(values as number[]) - batch[name]!) < 1e-12,
        `${name}: the batch metric is the mean of the per-pair values`,
      );
    }
    // A weight switched off is a constant, as the loss applies it.
    assert.equal(pairValues(inputs, { ...o, useQualityWeight: false }).metrics.w_qual, 1);
  });
});

test("a real Omni-DPO run logs its fixed sample every pair_logging_steps; w_qual is sigmoid(eta (S_w - S_l)) of those pairs", async () => {
  await train(recipe("straight"));
  const { header, rows } = readLog("straight");
  assert.equal(header.pair_log, 1);
  assert.equal(header.total_steps, 12);
  assert.equal(header.loss, "omni_dpo");
  assert.deepEqual(header.ids, pairSample(24, 10, 5));
  assert.equal(new Set(header.ids).size, 10);
  assert.ok(header.ids.every((i) => Number.isInteger(i) && i >= 0 && i < 24));
  assert.deepEqual(
    rows.map((r) => r.step),
    [3, 6, 9, 12],
  );
  const records = await mixDatasets({ [data]: 1.0 }, 5);
  const referenceMargins = referenceMarginsOf(header.ids.map((i) => records[i]));
  for (const r of rows) {
    for (const key of ["m", "q", "p", "g"] as const)
      assert.equal((r[key] as number[]).length, 10, `step ${r.step}: ${key} per pair`);
    (r.q as number[]).forEach((q, k) => {
      const rec = records[header.ids[k]];
      const expected = sigmoid(ETA * (rec.scoreChosen! - rec.scoreRejected!));
      assert.ok(Math.abs(q - expected) <= 5e-4 * expected, `pair ${header.ids[k]}: w_qual ${q} != ${expected}`);
    });
    // w_perf = (1 - σ(β dpi - τ_ref))^γ of the policy margin dpi = m / β + dref, the logged reward margin
    // m = β (dpi - dref) plus the frozen reference's margin, computed here from the initial model.
    // The log keeps 4 significant digits: 2.4e-4 relative at most, measured.
    (r.p as number[]).forEach((p, k) => {
      const dpi = r.m[k] / BETA + referenceMargins[k];
      const expected = (1 - sigmoid(BETA * dpi - TAU_REF)) ** GAMMA;
      assert.ok(
        Math.abs(p - expected) <= 1e-3 * expected,
        `step ${r.step}, pair ${header.ids[k]}: w_perf ${p} != ${expected}`,
      );
    });
    assert.ok(
      (r.g as number[]).every((g) => g === 0 || g === 1),
      "the gate is open or shut",
    );
  }
  // Training moves the margins of the followed pairs.
  assert.notDeepEqual(rows[0].m, rows.at(-1)!.m);
});

test("a run killed after logging step 6 and resumed from checkpoint-3 writes the same pair log as one run straight through", async () => {
  let steps = 0;
  const first = await train(recipe("resumed"), {
    onProgress: (s) => {
      steps = s;
    },
    shouldStop: () => steps >= 7,
  });
  assert.equal(first.interrupted, true);
  assert.deepEqual(
    readLog("resumed").rows.map((r) => r.step),
    [3, 6],
  );
  // As if killed before checkpoint-6 reached the disk: the resume starts at step 3, and step 6 is logged again.
  for (const c of ["checkpoint-6", "checkpoint-7"]) rmSync(join(root, "resumed", c), { recursive: true });
  await train(recipe("resumed"));
  const resumed = readLog("resumed");
  const straight = readLog("straight");
  assert.deepEqual(resumed.header, straight.header);
  assert.deepEqual(
    resumed.rows.map((r) => r.step),
    [3, 6, 9, 12],
    "no step twice",
  );
  assert.deepEqual(resumed.rows, straight.rows, "exact resume: the same values");
});

test("pair_log_samples: 0 writes no pair log", async () => {
  await train(recipe("off", { pair_log_samples: 0, num_train_epochs: 1, save_steps: 100 }));
  assert.ok(existsSync(join(root, "off", "metrics.jsonl")));
  assert.ok(!existsSync(join(root, "off", PAIR_LOG_FILE)));
});

// transformers' learning-rate schedules, every type lr_scheduler_type takes, against their
// lambdas written in Python from optimization.py and run through PyTorch's LambdaLR
// (test/torch/reference_schedules.py), with their lr_scheduler_kwargs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import * as torch from "../../src/torch/index.js";
import { runPythonJson } from "../../src/util/python.js";
import { skipUnless } from "../helpers/requirements.js";

const REFERENCE = fileURLToPath(new URL("../../../test/torch/reference_schedules.py", import.meta.url));

interface Case {
  type: torch.ScheduleType;
  lr: number;
  total: number;
  warmup: number;
  kwargs: Record<string, unknown>;
}
const CASES: Case[] = [
  { type: "constant_with_warmup", lr: 1e-3, total: 20, warmup: 4, kwargs: {} },
  { type: "linear", lr: 1e-3, total: 20, warmup: 3, kwargs: {} },
  { type: "cosine", lr: 1e-3, total: 20, warmup: 2, kwargs: { num_cycles: 1.5 } },
  { type: "cosine_with_restarts", lr: 1e-3, total: 20, warmup: 2, kwargs: { num_cycles: 3 } },
  { type: "polynomial", lr: 2e-3, total: 20, warmup: 5, kwargs: { lr_end: 1e-4, power: 2 } },
  { type: "polynomial", lr: 1e-3, total: 20, warmup: 0, kwargs: {} },
  { type: "inverse_sqrt", lr: 1e-3, total: 20, warmup: 4, kwargs: {} },
  { type: "inverse_sqrt", lr: 1e-3, total: 20, warmup: 0, kwargs: {} },
  { type: "cosine_with_min_lr", lr: 1e-3, total: 20, warmup: 3, kwargs: { min_lr: 1e-4 } },
  { type: "cosine_with_min_lr", lr: 1e-3, total: 20, warmup: 0, kwargs: { min_lr_rate: 0.1, num_cycles: 1 } },
  { type: "cosine_warmup_with_min_lr", lr: 1e-3, total: 20, warmup: 4, kwargs: { min_lr_rate: 0.05 } },
  { type: "cosine_warmup_with_min_lr", lr: 1e-3, total: 20, warmup: 4, kwargs: { min_lr: 1e-5, warmup_lr_rate: 0.2 } },
  { type: "warmup_stable_decay", lr: 1e-3, total: 20, warmup: 4, kwargs: { num_decay_steps: 6 } },
  {
    type: "warmup_stable_decay",
    lr: 1e-3,
    total: 20,
    warmup: 4,
    kwargs: { num_decay_steps: 5, num_stable_steps: 7, warmup_type: "1-sqrt", decay_type: "linear", min_lr_ratio: 0.1 },
  },
  {
    type: "warmup_stable_decay",
    lr: 1e-3,
    total: 20,
    warmup: 3,
    kwargs: { num_decay_steps: 8, warmup_type: "cosine", decay_type: "1-sqrt" },
  },
];
const STEPS = 24; // past the end, where polynomial and warmup_stable_decay hold their floor

test(
  "every schedule type, with its lr_scheduler_kwargs, gives transformers' learning rates step by step (PyTorch LambdaLR reference)",
  { skip: skipUnless("torch") },
  () => {
    const expected = runPythonJson<number[][]>(
      REFERENCE,
      CASES.map((c) => ({ ...c, steps: STEPS })),
      { file: true },
    );
    CASES.forEach((c, i) => {
      const p = torch.tensor([0], { dtype: "float64" }).requiresGrad_(true);
      const opt = new torch.SGD([p], { lr: c.lr });
      const sched = new torch.LRScheduler(opt, {
        type: c.type,
        totalSteps: c.total,
        warmupSteps: c.warmup,
        baseLr: c.lr,
        kwargs: c.kwargs,
      });
      const got = [sched.getLastLr()[0]];
      for (let s = 0; s < STEPS; s++) {
        sched.step();
        got.push(sched.getLastLr()[0]);
      }
      for (let s = 0; s <= STEPS; s++) {
        assert.ok(
          Math.abs(got[s] - expected[i][s]) <= 1e-15 + 1e-12 * Math.abs(expected[i][s]),
          `${c.type} ${JSON.stringify(c.kwargs)} step ${s}: ${got[s]} vs ${expected[i][s]}`,
        );
      }
      opt.dispose();
      p.dispose();
    });
  },
);

test("a schedule's wrong or missing lr_scheduler_kwargs are errors naming them", () => {
  const p = torch.tensor([0], { dtype: "float64" }).requiresGrad_(true);
  const opt = new torch.SGD([p], { lr: 1e-3 });
  const make = (type: torch.ScheduleType, kwargs: Record<string, unknown>) => () =>
    new torch.LRScheduler(opt, { type, totalSteps: 10, baseLr: 1e-3, kwargs });
  assert.throws(make("cosine_with_min_lr", {}), /cosine_with_min_lr needs exactly one of min_lr or min_lr_rate/);
  assert.throws(make("cosine_with_min_lr", { min_lr: 1e-5, min_lr_rate: 0.1 }), /exactly one of min_lr or min_lr_rate/);
  assert.throws(make("warmup_stable_decay", {}), /needs num_decay_steps/);
  assert.throws(
    make("warmup_stable_decay", { num_decay_steps: 2, decay_type: "exp" }),
    /decay_type must be linear, cosine, 1-sqrt/,
  );
  assert.throws(make("inverse_sqrt", { timescale: 5 }), /inverse_sqrt takes no lr_scheduler_kwargs \(got timescale\)/);
  assert.throws(make("polynomial", { lr_end: 1e-2 }), /lr_end \(0.01\) must be smaller than the learning rate/);
  opt.dispose();
  p.dispose();
});

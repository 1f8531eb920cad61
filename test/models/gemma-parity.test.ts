// Gemma 2 and Gemma 3 text logits against an independent PyTorch implementation written from
// transformers' modeling_gemma2.py / modeling_gemma3.py (test/models/reference_gemma.py, which
// reads the checkpoint directory itself). Tiny random configs with what sets Gemma apart
// switched on and visible at this size: attention and final soft-capping with small caps,
// a sliding window shorter than the sequence, GQA, head_dim != hidden / heads,
// query_pre_attn_scalar != head_dim, Gemma 3's q/k norms, local/global rotary bases and
// linear rope scaling. Unpadded, right- and left-padded batches; float32 at 1e-4, plain and
// sharded bf16 checkpoints, loaded to float32 (1e-4) and run in bf16 (against the reference in
// bf16, to one bf16 step). One python process serves the file; it skips, saying why, where no
// python with torch exists.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { torch } from "../../src/index.js";
import { createModel, loadModel, saveModel } from "../../src/models/auto.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import type { RawConfig } from "../../src/models/config.js";
import { runPythonJson } from "../../src/util/python.js";
import { skipUnless } from "../helpers/requirements.js";
import { GEMMA_CONFIGS, randomGemma } from "../helpers/gemma.js";

const skip = skipUnless("torch");
torch.setNumThreads(1);

const TOL = 1e-4;
// bf16 compute (weights and activations in bf16; norms and softmax in float32, as transformers)
// against the reference run in bf16 on the same weights, transformers' own bf16 arithmetic:
// allowed one bf16 step (2^-7 relative) of the logits' span; measured here: 0 (bit-equal).
const BF16_STEP = 2 ** -7;
const REFERENCE = fileURLToPath(new URL("../../../test/models/reference_gemma.py", import.meta.url));
const VOCAB = GEMMA_CONFIGS["gemma2"].vocab_size as number;

const root = mkdtempSync(join(tmpdir(), "omni-dpo-gemma-parity-"));
after(() => rmSync(root, { recursive: true, force: true }));

interface Batch {
  kind: string;
  ids: number[][];
  mask: number[][] | null;
}

/** Rows of 9, 6 and 3 random tokens: unpadded (all 9 long), right- and left-padded. */
function batches(seed: number): Batch[] {
  let s = seed;
  const rand = () => 1 + ((s = (s * 1103515245 + 12345) % 2147483648) % (VOCAB - 1));
  const lengths = [9, 6, 3];
  const rows = lengths.map((n) => Array.from({ length: n }, rand));
  const padded = (xs: number[], left: boolean) => {
    const fill = new Array(9 - xs.length).fill(0);
    return left ? [...fill, ...xs] : [...xs, ...fill];
  };
  return [
    { kind: "unpadded", ids: rows.map((r) => [...r, ...Array.from({ length: 9 - r.length }, rand)]), mask: null },
    ...[false, true].map((left) => ({
      kind: left ? "left-padded" : "right-padded",
      ids: rows.map((r) => padded(r, left)),
      mask: rows.map((r) =>
        padded(
          r.map(() => 1),
          left,
        ),
      ),
    })),
  ];
}

interface Case {
  name: string;
  dir: string;
  model: CausalLM;
  batches: Batch[];
  tolerance: "float32" | "bf16";
}

function saved(
  name: string,
  config: RawConfig,
  seed: number,
  options: { dtype?: torch.DType; maxShardBytes?: number } = {},
): string {
  const dir = join(root, name.replace(/[^a-z0-9]+/gi, "-"));
  const model = randomGemma(config, seed);
  saveModel(model, dir, options);
  model.dispose();
  if (options.maxShardBytes) {
    const files = readdirSync(dir);
    assert.ok(
      files.includes("model.safetensors.index.json") && !files.includes("model.safetensors"),
      `${name}: not sharded: ${files}`,
    );
  }
  return dir;
}

const prepared = (() => {
  let done: { cases: Case[]; refs: { shape: number[]; logits: number[] }[][] } | undefined;
  let failure: unknown;
  return () => {
    if (failure) throw failure;
    if (done) return done;
    try {
      done = build();
    } catch (e) {
      failure = e;
      throw e;
    }
    return done;
  };
  function build() {
    const cases: Case[] = [];
    let seed = 1;
    for (const [name, config] of Object.entries(GEMMA_CONFIGS)) {
      const dir = saved(name, config, seed++);
      cases.push({ name, dir, model: loadModel(dir), batches: batches(seed * 13), tolerance: "float32" });
    }
    for (const key of ["gemma2", "gemma3_text"]) {
      const dir = saved(`${key}, bf16 sharded`, GEMMA_CONFIGS[key], seed++, { dtype: "bfloat16", maxShardBytes: 4096 });
      cases.push({
        name: `${key}, sharded bfloat16 checkpoint loaded to float32`,
        dir,
        model: loadModel(dir),
        batches: batches(seed * 17),
        tolerance: "float32",
      });
      cases.push({
        name: `${key}, sharded bfloat16 checkpoint run in bfloat16`,
        dir,
        model: loadModel(dir, { dtype: "auto" }),
        batches: batches(seed * 19),
        tolerance: "bf16",
      });
    }
    const request = {
      cases: cases.flatMap((c) =>
        c.batches.map((b) => ({
          dir: c.dir,
          input_ids: b.ids,
          attention_mask: b.mask,
          dtype: c.tolerance === "bf16" ? "bfloat16" : "float32",
        })),
      ),
    };
    const response = runPythonJson<{ results: { shape: number[]; logits: number[] }[] }>(REFERENCE, request, {
      file: true,
    });
    let at = 0;
    return { cases, refs: cases.map((c) => c.batches.map(() => response.results[at++])) };
  }
})();

/** Max |ours - reference| over non-padding positions, and the reference logits' span there. */
function compare(
  model: CausalLM,
  batch: Batch,
  ref: { shape: number[]; logits: number[] },
): { diff: number; span: number } {
  const ours = torch.noGrad(() =>
    torch.tidy(() => {
      const out = model.forward(torch.tensor(batch.ids, { dtype: "int64" }), {
        attentionMask: batch.mask ? torch.tensor(batch.mask, { dtype: "int64" }) : null,
      });
      assert.deepEqual(out.shape, ref.shape, "logits shapes differ");
      return out.to("float32").data() as Float32Array;
    }),
  );
  const [b, t, v] = ref.shape;
  let diff = 0,
    lo = Infinity,
    hi = -Infinity;
  for (let i = 0; i < b; i++)
    for (let j = 0; j < t; j++) {
      if (batch.mask && batch.mask[i][j] === 0) continue;
      for (let k = 0; k < v; k++) {
        const at = (i * t + j) * v + k;
        const d = Math.abs(ours[at] - ref.logits[at]);
        if (!(d <= diff)) diff = d; // NaN counts as the worst
        lo = Math.min(lo, ref.logits[at]);
        hi = Math.max(hi, ref.logits[at]);
      }
    }
  return { diff, span: hi - lo };
}

const NAMES = [
  ...Object.keys(GEMMA_CONFIGS),
  ...["gemma2", "gemma3_text"].flatMap((k) => [
    `${k}, sharded bfloat16 checkpoint loaded to float32`,
    `${k}, sharded bfloat16 checkpoint run in bfloat16`,
  ]),
];

for (const name of NAMES) {
  test(`logits match the PyTorch reference: ${name}`, { skip }, () => {
    const { cases, refs } = prepared();
    const i = cases.findIndex((c) => c.name === name);
    assert.ok(i >= 0, `no case ${name}`);
    const c = cases[i];
    for (let j = 0; j < c.batches.length; j++) {
      const { diff, span } = compare(c.model, c.batches[j], refs[i][j]);
      // Not vacuous: the logits vary far more than the tolerance.
      assert.ok(span > 1, `${name}: logits span only ${span}`);
      const tol = c.tolerance === "float32" ? TOL : BF16_STEP * span;
      if (process.env.OMNI_DPO_SHOW_DIFFS) console.log(name, c.batches[j].kind, diff, span);
      assert.ok(diff <= tol, `${name}, ${c.batches[j].kind}: max |diff| ${diff} > ${tol} (logit span ${span})`);
    }
  });
}

test(
  "soft-capping binds: the final logits stay inside the cap, and a capped model differs from the uncapped one",
  { skip },
  () => {
    const { cases, refs } = prepared();
    const i = cases.findIndex((c) => c.name === "gemma2");
    const cap = GEMMA_CONFIGS.gemma2.final_logit_softcapping as number;
    assert.ok(refs[i][0].logits.every((x) => Math.abs(x) < cap));
    // The same weights without either cap give other logits: the caps are not no-ops at this size.
    const uncapped = createModel({
      ...GEMMA_CONFIGS.gemma2,
      final_logit_softcapping: null,
      attn_logit_softcapping: null,
    });
    torch.noGrad(() => {
      for (const [n, p] of cases[i].model.namedParameters()) uncapped.setParameter(n, p);
    });
    const { diff } = compare(uncapped.eval(), cases[i].batches[0], refs[i][0]);
    assert.ok(diff > 0.1, `removing the caps changed the logits by only ${diff}`);
    uncapped.dispose();
  },
);

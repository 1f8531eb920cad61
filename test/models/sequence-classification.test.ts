// Sequence-classification (reward-model) heads: scores against an independent PyTorch
// implementation of transformers' head (test/models/reference_archs2.py, reading the same
// checkpoint directory) for Llama, Qwen2, Mistral, Qwen3 and Phi-3 classifiers, left- and
// right-padded, plain, sharded and BF16 checkpoints, at 1e-4; the last-non-padding-token rule;
// save/load round trip; the errors a user meets (no score head, no pad_token_id with a batch).
// One python process serves the file; parity skips, with the reason printed, where no python
// with torch exists.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  AutoModelForSequenceClassification,
  createModel,
  registerArchitecture,
  saveModel,
  torch,
} from "../../src/index.js";
import { familySpec, llamaConfig, LlamaForCausalLM } from "../../src/models/llama.js";
import type { RawConfig } from "../../src/models/config.js";
import {
  createSequenceClassifier,
  loadSequenceClassifier,
  saveSequenceClassifier,
  type SequenceClassifier,
} from "../../src/models/sequence-classification.js";
import { RecomputeTape } from "../../src/nn/recompute.js";
import { runPythonJson } from "../../src/util/python.js";
import { once } from "../helpers/python.js";
import { skipUnless } from "../helpers/requirements.js";
import { paddedBatches, randomizeParameters, type Batch } from "../helpers/batches.js";

const skip = skipUnless("torch");

torch.setNumThreads(1);
const TOL = 1e-4;
const VOCAB = 61;
const PAD = 0;
const REFERENCE = fileURLToPath(new URL("../../../test/models/reference_archs2.py", import.meta.url));

const root = mkdtempSync(join(tmpdir(), "omni-dpo-seqcls-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const newDir = (what: string) => join(root, `${dirs++}-${what}`);

const base = {
  vocab_size: VOCAB,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  hidden_act: "silu",
  pad_token_id: PAD,
};

const CLASSIFIER_CONFIGS: Record<string, RawConfig> = {
  "llama, one label (a reward model)": {
    architectures: ["LlamaForSequenceClassification"],
    model_type: "llama",
    ...base,
    rope_theta: 10000,
    id2label: { 0: "LABEL_0" },
  },
  "qwen2, three labels": {
    architectures: ["Qwen2ForSequenceClassification"],
    model_type: "qwen2",
    ...base,
    rope_theta: 1000000,
    num_labels: 3,
  },
  "mistral, sliding window 3": {
    architectures: ["MistralForSequenceClassification"],
    model_type: "mistral",
    ...base,
    sliding_window: 3,
    id2label: { 0: "bad", 1: "good" },
  },
  "qwen3, tied embeddings": {
    architectures: ["Qwen3ForSequenceClassification"],
    model_type: "qwen3",
    ...base,
    head_dim: 16,
    tie_word_embeddings: true,
    num_labels: 1,
  },
  "gemma2, soft-capped, sliding window 3": {
    architectures: ["Gemma2ForSequenceClassification"],
    model_type: "gemma2",
    ...base,
    head_dim: 16,
    query_pre_attn_scalar: 16,
    attn_logit_softcapping: 2.0,
    final_logit_softcapping: 3.0,
    sliding_window: 3,
    hidden_activation: "gelu_pytorch_tanh",
    num_labels: 1,
  },
  "phi3, partial rotary": {
    architectures: ["Phi3ForSequenceClassification"],
    model_type: "phi3",
    ...base,
    partial_rotary_factor: 0.5,
    num_labels: 1,
  },
};

function classifier(config: RawConfig, seed: number): SequenceClassifier {
  const model = createSequenceClassifier(config, { std: 0.2 });
  randomizeParameters(model, seed);
  return model.eval();
}

function scoresOf(model: SequenceClassifier, batch: Batch): { shape: number[]; values: number[] } {
  return torch.noGrad(() =>
    torch.tidy(() => {
      const out = model.score(torch.tensor(batch.ids, { dtype: "int64" }), {
        attentionMask: batch.mask ? torch.tensor(batch.mask, { dtype: "int64" }) : null,
      });
      return { shape: out.shape, values: Array.from(out.data() as Float32Array) };
    }),
  );
}

const batches = (lengths: number[], seed: number): Batch[] => paddedBatches(lengths, seed, VOCAB, PAD);

const maxAbsDiff = (a: number[], b: number[]) =>
  a.reduce((m, x, i) => {
    const d = Math.abs(x - b[i]);
    return d <= m ? m : d;
  }, 0);

// ---- parity with the PyTorch reference -------------------------------------------------------

interface Case {
  name: string;
  dir: string;
  model: SequenceClassifier;
  batches: Batch[];
}

const prepared = once(() => {
  const cases: Case[] = [];
  let seed = 7;
  const variants: [string, string, { maxShardBytes?: number; dtype?: torch.DType }][] = [
    ...Object.keys(CLASSIFIER_CONFIGS).map((k) => [k, k, {}] as [string, string, object]),
    ["llama, sharded", "llama, one label (a reward model)", { maxShardBytes: 4096 }],
    ["qwen2, bfloat16 and sharded", "qwen2, three labels", { dtype: "bfloat16", maxShardBytes: 4096 }],
  ];
  for (const [name, key, options] of variants) {
    const dir = newDir(name.replace(/[^a-z0-9]+/gi, "-"));
    const model = classifier(CLASSIFIER_CONFIGS[key], seed++);
    saveSequenceClassifier(model, dir, options);
    model.dispose();
    if (options.maxShardBytes)
      assert.ok(readdirSync(dir).includes("model.safetensors.index.json"), `${name}: not sharded`);
    cases.push({ name, dir, model: loadSequenceClassifier(dir), batches: batches([7, 4, 2], seed * 13) });
  }
  const request = {
    cases: cases.flatMap((c) =>
      c.batches.map((b) => ({ task: "scores", dir: c.dir, input_ids: b.ids, attention_mask: b.mask })),
    ),
  };
  const response = runPythonJson<{ results: { shape: number[]; values: number[] }[] }>(REFERENCE, request, {
    file: true,
  });
  let at = 0;
  return { cases, refs: cases.map((c) => c.batches.map(() => response.results[at++])) };
});

for (const name of [...Object.keys(CLASSIFIER_CONFIGS), "llama, sharded", "qwen2, bfloat16 and sharded"]) {
  test(`scores match the PyTorch reference: ${name}`, { skip }, () => {
    const { cases, refs } = prepared();
    const i = cases.findIndex((c) => c.name === name);
    const c = cases[i];
    for (let j = 0; j < c.batches.length; j++) {
      const ours = scoresOf(c.model, c.batches[j]);
      assert.deepEqual(ours.shape, refs[i][j].shape);
      const diff = maxAbsDiff(ours.values, refs[i][j].values);
      assert.ok(diff <= TOL, `${name}, ${c.batches[j].kind}: max |diff| ${diff} > ${TOL}`);
      // Not vacuous: the rows score differently, by far more than the tolerance.
      const ref = refs[i][j].values;
      assert.ok(
        Math.max(...ref) - Math.min(...ref) > 100 * TOL,
        `${name}: scores span only ${Math.max(...ref) - Math.min(...ref)}`,
      );
    }
  });
}

// ---- the pooled token ------------------------------------------------------------------------

test("a padded row scores as the row alone, with left or right padding", () => {
  const model = classifier(CLASSIFIER_CONFIGS["llama, one label (a reward model)"], 3);
  const [, right, left] = batches([6, 3], 99);
  const alone = right.ids.map(
    (row, i) =>
      scoresOf(model, {
        kind: "alone",
        ids: [
          row.slice(
            0,
            right.mask![i].reduce((a, b) => a + b, 0),
          ),
        ],
        mask: null,
      }).values[0],
  );
  for (const batch of [right, left]) {
    const got = scoresOf(model, batch).values;
    assert.ok(maxAbsDiff(got, alone) < 1e-5, `${batch.kind}: ${got} vs ${alone}`);
  }
  // pad_token_id, not the mask, picks the token: right padding without a mask still scores the
  // last real token (causal attention never sees the padding after it).
  const unmasked = scoresOf(model, { kind: "right, no mask", ids: right.ids, mask: null }).values;
  assert.ok(maxAbsDiff(unmasked, alone) < 1e-5, `right, no mask: ${unmasked} vs ${alone}`);
  assert.deepEqual(
    torch.tidy(() =>
      model
        .lastTokenIndices(
          torch.tensor(
            [
              [5, 6, 0, 0],
              [0, 0, 7, 8],
              [0, 0, 0, 0],
            ],
            { dtype: "int64" },
          ),
        )
        .toArray(),
    ),
    [1, 3, 0],
  );
  model.dispose();
});

test("scoreTokenLists batches rows of any length and returns each row's scores in order", () => {
  const model = classifier(CLASSIFIER_CONFIGS["qwen2, three labels"], 4);
  const rows = [[3, 4, 5], [9], [1, 2, 3, 4, 5, 6, 7], [8, 8]];
  const batched = model.scoreTokenLists(rows, { batchSize: 3 });
  assert.equal(batched.length, 4);
  rows.forEach((row, i) => {
    const alone = scoresOf(model, { kind: "alone", ids: [row], mask: null }).values;
    assert.equal(batched[i].length, 3);
    assert.ok(maxAbsDiff(batched[i], alone) < 1e-5, `row ${i}: ${batched[i]} vs ${alone}`);
  });
  assert.throws(
    () =>
      model.scoreTokenLists([
        [1, 2],
        [3, VOCAB],
      ]),
    /row 1, position 1: token id 61 is not an integer in \[0, 61\)/,
  );
  assert.throws(() => model.scoreTokenLists([[]]), /row 0 must be a non-empty list/);
  model.dispose();
});

test("without pad_token_id a batch of one scores its last token and a larger batch is an error", () => {
  const { pad_token_id: _, ...noPad } = CLASSIFIER_CONFIGS["llama, one label (a reward model)"];
  const model = classifier(noPad, 5);
  assert.equal(model.padTokenId, null);
  assert.throws(
    () =>
      scoresOf(model, {
        kind: "two",
        ids: [
          [1, 2],
          [3, 4],
        ],
        mask: null,
      }),
    /cannot score a batch of 2 rows: config.json has no pad_token_id/,
  );
  const one = scoresOf(model, { kind: "one", ids: [[1, 2, 3]], mask: null });
  assert.deepEqual(one.shape, [1, 1]);
  assert.deepEqual(
    model.scoreTokenLists([[1, 2, 3], [4]]).map((r) => r.length),
    [1, 1],
  );
  model.dispose();
});

// ---- checkpoints -----------------------------------------------------------------------------

test("save and load round-trip: names, config.json, every parameter, bf16", async () => {
  const model = classifier(CLASSIFIER_CONFIGS["qwen2, three labels"], 6);
  const names = model.namedParameters().map(([n]) => n);
  assert.ok(
    names.includes("score.weight") && names.every((n) => n === "score.weight" || n.startsWith("model.")),
    names.join(),
  );
  assert.deepEqual(model.scoreHead.weight.shape, [3, 32]);
  const dir = newDir("round-trip");
  saveSequenceClassifier(model, dir);
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  assert.deepEqual(config.architectures, ["Qwen2ForSequenceClassification"]);
  assert.deepEqual(config.id2label, { 0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2" });
  const loaded = await AutoModelForSequenceClassification.fromPretrained(dir);
  assert.equal(loaded.numLabels, 3);
  assert.equal(loaded.training, false);
  const theirs = new Map(loaded.namedParameters());
  for (const [n, p] of model.namedParameters()) assert.deepEqual(theirs.get(n)!.data(), p.data(), `${n} differs`);

  const bfDir = newDir("bf16");
  saveSequenceClassifier(model, bfDir, { dtype: "bfloat16" });
  const bf = loadSequenceClassifier(bfDir, { dtype: "auto" });
  assert.equal(bf.scoreHead.weight.dtype, "bfloat16");
  const batch = batches([5, 3], 11)[1];
  const s32 = scoresOf(model, batch),
    s16 = scoresOf(bf, batch);
  assert.ok(maxAbsDiff(s32.values, s16.values) < 0.1, `bf16 scores ${s16.values} vs ${s32.values}`);
  for (const m of [model, loaded, bf]) m.dispose();
});

test("a causal-LM checkpoint has no score head: the error names the directory and the tensor", () => {
  const { id2label: _, ...rest } = CLASSIFIER_CONFIGS["llama, one label (a reward model)"];
  const lm = createModel({ ...rest, architectures: ["LlamaForCausalLM"] });
  const dir = newDir("causal-lm");
  saveModel(lm, dir);
  lm.dispose();
  assert.throws(
    () => loadSequenceClassifier(dir),
    (e: Error) =>
      e.message.startsWith(
        `${dir}: no sequence-classification head: the checkpoint has no tensor score.weight, which LlamaForSequenceClassification needs`,
      ) && /lm_head\.weight/.test(e.message),
  );
});

test("config errors name the field; unknown architectures list the supported classifiers", () => {
  const llama = CLASSIFIER_CONFIGS["llama, one label (a reward model)"];
  assert.throws(
    () => createSequenceClassifier({ ...llama, id2label: undefined, num_labels: 0 }),
    /config.json: field num_labels must be a positive integer, got 0/,
  );
  assert.throws(
    () => createSequenceClassifier({ ...llama, pad_token_id: "x" }),
    /config.json: field pad_token_id must be a non-negative integer or null/,
  );
  assert.throws(
    () => createSequenceClassifier({ architectures: ["BertForSequenceClassification"], model_type: "bert" }),
    /config.json: no sequence-classification model for architectures \["BertForSequenceClassification"\]; supported: LlamaForSequenceClassification, Qwen2ForSequenceClassification, MistralForSequenceClassification, Qwen3ForSequenceClassification, Phi3ForSequenceClassification/,
  );
  // A causal-LM class or a bare model_type resolves to the architecture's classifier.
  for (const c of [
    { ...llama, architectures: ["LlamaForCausalLM"] },
    { ...llama, architectures: undefined },
  ]) {
    const m = createSequenceClassifier(c);
    assert.deepEqual(m.config.architectures, ["LlamaForSequenceClassification"]);
    m.dispose();
  }
});

test("gradients reach the body and the head, with and without gradient checkpointing", () => {
  const model = classifier(CLASSIFIER_CONFIGS["mistral, sliding window 3"], 8);
  const batch = batches([6, 4], 5)[2];
  const grads = (tape?: RecomputeTape) =>
    torch.tidy(() => {
      model.zeroGrad();
      const ids = torch.tensor(batch.ids, { dtype: "int64" }),
        mask = torch.tensor(batch.mask!, { dtype: "int64" });
      const loss = model
        .score(ids, { attentionMask: mask, recompute: tape })
        .select(1, 1)
        .sub(model.score(ids, { attentionMask: mask }).select(1, 0).detach())
        .sum();
      loss.backward();
      tape?.backward();
      return model
        .namedParameters()
        .map(([n, p]) => [n, Array.from(p.grad!.data() as Float32Array)] as [string, number[]]);
    });
  const plain = grads();
  for (const [n, g] of plain) assert.ok(g.some((x) => x !== 0) || /embed_tokens/.test(n), `${n}: no gradient`);
  const tape = new RecomputeTape();
  const recomputed = grads(tape);
  tape.dispose();
  for (let i = 0; i < plain.length; i++)
    assert.ok(maxAbsDiff(plain[i][1], recomputed[i][1]) < 1e-5, `${plain[i][0]}: checkpointed gradient differs`);
  model.dispose();
});

// ---- registration ----------------------------------------------------------------------------

test("an architecture registered from outside gains a classifier by listing it (and finalNorm)", () => {
  class TinyForCausalLM extends LlamaForCausalLM {
    override readonly architecture: string = "tiny";
  }
  registerArchitecture(familySpec("tiny", "Tiny", TinyForCausalLM, (raw) => llamaConfig(raw, "llama")));
  const config = {
    ...CLASSIFIER_CONFIGS["llama, one label (a reward model)"],
    architectures: ["TinyForSequenceClassification"],
    model_type: "tiny",
  };
  const model = classifier(config, 9);
  assert.equal(model.architecture, "tiny");
  const dir = newDir("tiny");
  saveSequenceClassifier(model, dir);
  const loaded = loadSequenceClassifier(dir);
  const batch = batches([4, 2], 3)[2];
  assert.deepEqual(scoresOf(loaded, batch).values, scoresOf(model, batch).values);
  model.dispose();
  loaded.dispose();

  // A class name is taken once, across causal-LM and classifier names; a model without finalNorm cannot have one.
  assert.throws(
    () =>
      registerArchitecture({
        ...familySpec("tiny2", "Tiny2", TinyForCausalLM, (raw) => llamaConfig(raw, "llama")),
        sequenceClassifiers: ["LlamaForSequenceClassification"],
      }),
    /class LlamaForSequenceClassification is already registered, by 'llama'/,
  );
  class NoNorm extends TinyForCausalLM {
    override readonly architecture: string = "nonorm";
    override readonly finalNorm = undefined as never;
  }
  registerArchitecture(familySpec("nonorm", "NoNorm", NoNorm, (raw) => llamaConfig(raw, "llama")));
  assert.throws(
    () => createSequenceClassifier({ ...config, architectures: ["NoNormForSequenceClassification"] }),
    /architecture 'nonorm' lists NoNormForSequenceClassification but its model has no finalNorm/,
  );
});

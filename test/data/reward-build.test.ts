// The whole text pipeline with a reward model: a tiny chat policy and a tiny Llama reward model
// (a LlamaForSequenceClassification checkpoint with the chatml template), both made here, go
// through `omni-dpo data build --reward-model` into `omni-dpo train` with pref_loss uni_dpo.
//   - every stored score (all_rm_scores, batched and right-padded here) equals the independent
//     PyTorch head (test/models/reference_archs2.py) on the same conversation scored alone;
//   - the reward model sees the conversation in its own chat template (checked as text);
//     without a template, the policy's prompt text and the response;
//   - a directory without a score head, or with more than one label, is refused, naming it.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { torch } from "../../src/index.js";
import type { Message } from "../../src/data/records.js";
import { rewardInput } from "../../src/data/reward.js";
import type { TextPair } from "../../src/data/text-build.js";
import { createSequenceClassifier, saveSequenceClassifier } from "../../src/models/sequence-classification.js";
import { Tokenizer } from "../../src/text/index.js";
import { packageRoot } from "../../src/util/package-root.js";
import { runPythonJson } from "../../src/util/python.js";
import { skipUnless } from "../helpers/requirements.js";
import { writeByteLevelTokenizer } from "../helpers/tokenizers.js";
import { tempDir, writeJsonl, writeToyModel } from "../helpers/toy.js";

torch.setNumThreads(1);
const needsTorch = skipUnless("torch");

const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");
const REFERENCE = fileURLToPath(new URL("../../../test/models/reference_archs2.py", import.meta.url));
const root = tempDir("omni-dpo-rewardbuild-");
after(() => rmSync(root, { recursive: true, force: true }));

/** A tiny Llama reward model (one label, every weight random so scores spread) with a byte-level tokenizer. */
function writeRewardModel(
  dir: string,
  options: { chatTemplate?: "chatml"; numLabels?: number; maxPositions?: number; vocabSize?: number } = {},
): string {
  const tok = writeByteLevelTokenizer(dir, options.chatTemplate ? { chatTemplate: options.chatTemplate } : {});
  torch.manualSeed(5);
  const model = createSequenceClassifier({
    architectures: ["LlamaForSequenceClassification"],
    model_type: "llama",
    vocab_size: options.vocabSize ?? tok.vocabSize,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: options.maxPositions ?? 256,
    rms_norm_eps: 1e-6,
    num_labels: options.numLabels ?? 1,
    pad_token_id: tok.eosTokenId,
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenId,
  });
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, p] of model.namedParameters()) {
        const v = torch.randn(p.shape).mul(0.3);
        model.setParameter(name, /norm/.test(name) ? v.add(1) : v);
      }
    }),
  );
  saveSequenceClassifier(model, dir);
  model.dispose();
  return dir;
}

const POLICY = writeToyModel(join(root, "policy"), { chatTemplate: "chatml", seed: 8 });
const RM = writeRewardModel(join(root, "rm"), { chatTemplate: "chatml" });
const PROMPTS = writeJsonl(join(root, "prompts.jsonl"), [
  ...["apple", "river", "stone", "cloud", "green", "tiger", "piano", "lemon"].map((w) => ({ prompt: `say ${w}` })),
  {
    prompt: [
      { role: "system", content: "answer in one word" },
      { role: "user", content: "say north" },
    ],
  },
  { messages: [{ role: "user", content: "say candle" }] },
]);
const PAIRS = join(root, "pairs.jsonl");

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    timeout: 180_000,
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
}
const readJsonl = (file: string) =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TextPair);

test("data build --reward-model: pairs from a policy and a reward model, all K scores kept, the summary beside them", () => {
  const r = cli([
    "data",
    "build",
    "--model",
    POLICY,
    "--prompts",
    PROMPTS,
    "--reward-model",
    RM,
    "--out",
    PAIRS,
    "--max-new-tokens",
    "12",
    "--batch-size",
    "4",
    "--score-batch-size",
    "7",
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /pairs from 10 prompts/);
  assert.match(r.stdout, /scores: min .* mean .* max/);
  const summary = JSON.parse(readFileSync(`${PAIRS}.summary.json`, "utf8")) as { pairs: number; responses: number };
  assert.equal(summary.responses, 50);
  const rows = readJsonl(PAIRS);
  assert.equal(rows.length, summary.pairs);
  assert.ok(rows.length >= 8, `only ${rows.length} pairs`);
  for (const row of rows) {
    assert.equal(row.all_rm_scores.length, 5);
    assert.equal(row.score_chosen, Math.max(...(row.all_rm_scores as number[])));
    assert.equal(row.score_rejected, Math.min(...(row.all_rm_scores as number[])));
    assert.ok(row.score_chosen > row.score_rejected);
  }
});

test("a reward model with a short context: sampling is capped to fit it (said once), every sample scored", () => {
  const words = ["apple", "river", "stone", "cloud"];
  const prompts = writeJsonl(
    join(root, "short-prompts.jsonl"),
    words.map((w) => ({ prompt: `say ${w}` })),
  );
  const tok = Tokenizer.fromPretrainedSync(RM);
  const rmTokens = (prompt: string | Message[], response = "") =>
    rewardInput(tok, { prompt, promptText: "", chat: true, response, at: "" }).length;
  const used = words.map((w) => rmTokens(`say ${w}`));
  const context = Math.max(...used) + 6; // room for 6-10 response tokens; --max-new-tokens asks for 40
  const rm = writeRewardModel(join(root, "rm-short"), { chatTemplate: "chatml", maxPositions: context });
  const out = join(root, "short-pairs.jsonl");
  const r = cli([
    "data",
    "build",
    "--model",
    POLICY,
    "--prompts",
    prompts,
    "--reward-model",
    rm,
    "--out",
    out,
    "--max-new-tokens",
    "40",
    "--samples",
    "3",
  ]);
  assert.equal(r.status, 0, r.stderr);
  const notices = r.stderr.split("\n").filter((l) => l.includes("sampled to fit"));
  assert.equal(notices.length, 1, r.stderr);
  assert.match(
    notices[0],
    new RegExp(
      `context of ${context} tokens \\(.*rm-short/config\\.json\\).*` +
        "4 of 4 prompts sample at most 6-\\d+ new tokens instead of 40",
    ),
  );
  const summary = JSON.parse(readFileSync(`${out}.summary.json`, "utf8")) as {
    responses: number;
    generated_tokens: number;
    truncated_for_scoring: number;
  };
  assert.equal(summary.responses, 12);
  assert.ok(summary.generated_tokens <= 12 * (context - Math.min(...used)), `${summary.generated_tokens} tokens`);
  // The reward model's tokenizer may count a sampled response longer than the policy did: those
  // are cut to its context for scoring and counted, never lost.
  const rows = readJsonl(out);
  const over = rows.flatMap((row) => row.all_generated_responses.filter((t) => rmTokens(row.prompt, t) > context));
  assert.equal(summary.truncated_for_scoring, over.length);
  if (over.length) assert.match(r.stdout, new RegExp(`${over.length} responses cut to fit the reward model's context`));
  assert.ok(rows.every((row) => row.all_rm_scores.length === 3 && row.all_rm_scores.every(Number.isFinite)));
  // A prompt that alone fills the reward model's context is refused before sampling, naming it.
  let text = "say";
  while (rmTokens(text) < context) text += " stone";
  const long = writeJsonl(join(root, "long-prompts.jsonl"), [{ prompt: "say apple" }, { prompt: text }]);
  const refused = cli([
    "data",
    "build",
    "--model",
    POLICY,
    "--prompts",
    long,
    "--reward-model",
    rm,
    "--out",
    join(root, "long.jsonl"),
  ]);
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /long-prompts\.jsonl:2: field 'prompt': \d+ tokens for reward model .*rm-short/);
  assert.match(refused.stderr, /holds \d+: no room to score a response/);
  assert.ok(!existsSync(join(root, "long.jsonl.progress.jsonl")), "nothing was sampled");
});

test("a reward model whose tokenizer gives ids past its vocab_size is refused before sampling", () => {
  const rm = writeRewardModel(join(root, "rm-small-vocab"), { chatTemplate: "chatml", vocabSize: 40 });
  const out = join(root, "small-vocab.jsonl");
  const r = cli([
    "data",
    "build",
    "--model",
    POLICY,
    "--prompts",
    PROMPTS,
    "--reward-model",
    rm,
    "--out",
    out,
    "--max-new-tokens",
    "4",
  ]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /prompts\.jsonl:1: the prompt: token id \d+.*the tokenizer of .*rm-small-vocab gives ids /);
  assert.match(r.stderr, /rm-small-vocab\/config\.json: vocab_size 40/);
  assert.doesNotMatch(r.stderr, /index out of range/);
  assert.ok(!existsSync(`${out}.progress.jsonl`), "nothing was sampled");
});

test(
  "every stored reward score equals the independent PyTorch head on the conversation scored alone",
  { skip: needsTorch },
  () => {
    const rows = readJsonl(PAIRS);
    const tok = Tokenizer.fromPretrainedSync(RM);
    const ids = rows.flatMap((row) =>
      row.all_generated_responses.map((response) =>
        rewardInput(tok, { prompt: row.prompt, promptText: "", chat: true, response, at: "" }),
      ),
    );
    const response = runPythonJson<{ results: { shape: number[]; values: number[] }[] }>(
      REFERENCE,
      {
        cases: ids.map((row) => ({ task: "scores", dir: RM, input_ids: [row], attention_mask: null })),
      },
      { file: true },
    );
    const ours = rows.flatMap((row) => row.all_rm_scores as number[]);
    const theirs = response.results.map((x) => x.values[0]); // one row, one label each
    const diff = Math.max(...ours.map((s, i) => Math.abs(s - theirs[i])));
    assert.ok(diff <= 1e-4, `max |diff| ${diff}`);
    // Not vacuous: the scores spread far beyond the tolerance.
    assert.ok(Math.max(...theirs) - Math.min(...theirs) > 0.1);
  },
);

test("the reward model reads its own chat template; without one, the policy's prompt text and the response", () => {
  const tok = Tokenizer.fromPretrainedSync(RM);
  const item = {
    prompt: [
      { role: "system", content: "s" },
      { role: "user", content: "q" },
    ],
    promptText: "ignored",
    chat: true,
    response: "a",
    at: "",
  };
  assert.equal(
    tok.decode(rewardInput(tok, item)),
    "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n",
  );
  const plain = Tokenizer.fromPretrainedSync(writeRewardModel(join(root, "rm-plain")));
  assert.deepEqual(
    rewardInput(plain, { prompt: "say x:", promptText: "say x:", chat: false, response: " x x", at: "" }),
    plain.encode("say x: x x"),
  );
});

test("the pairs train with pref_loss uni_dpo", () => {
  const yaml = join(root, "uni-dpo.yaml");
  writeFileSync(
    yaml,
    `model_name_or_path: policy
dataset_mixer:
  pairs.jsonl: 1.0
output_dir: trained
pref_loss: uni_dpo
learning_rate: 1.0e-3
num_train_epochs: 1
per_device_train_batch_size: 4
max_length: 96
max_prompt_length: 48
logging_steps: 1
save_strategy: "no"
`,
  );
  const r = cli(["train", yaml]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /trained \d+ steps; model saved to /);
  const metrics = readFileSync(join(root, "trained", "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(
    metrics.some((m) => typeof m.loss === "number" && Number.isFinite(m.loss)),
    JSON.stringify(metrics[0]),
  );
});

test("a reward-model directory without a score head, or with several labels, is refused before sampling, naming it", () => {
  const out = join(root, "refused.jsonl");
  const noHead = cli([
    "data",
    "build",
    "--model",
    POLICY,
    "--prompts",
    PROMPTS,
    "--reward-model",
    POLICY,
    "--out",
    out,
  ]);
  assert.equal(noHead.status, 1);
  assert.ok(noHead.stderr.includes(POLICY), noHead.stderr);
  assert.match(noHead.stderr, /ForSequenceClassification|score\.weight/);
  const three = writeRewardModel(join(root, "rm-three"), { numLabels: 3 });
  const r = cli(["data", "build", "--model", POLICY, "--prompts", PROMPTS, "--reward-model", three, "--out", out]);
  assert.equal(r.status, 1);
  assert.ok(r.stderr.includes(`${join(three, "config.json")}: field num_labels`), r.stderr);
  assert.ok(!existsSync(out));
});

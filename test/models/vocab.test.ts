// Token ids against the embedding where a tokenizer meets a model: a model (policy, ref_model,
// eval's --ref, generate's and data build's policy) whose vocab_size is below its tokenizer's
// ids is an error naming the tokenizer, the model's config.json, the id, the size and where the
// id came from, before any forward pass; never the engine's "index out of range in self".
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { evaluatePairwiseFile } from "../../src/eval/pairwise.js";
import { VocabularyError } from "../../src/models/vocab.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

torch.setNumThreads(1);
const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");
const root = tempDir("omni-dpo-vocab-");
after(() => rmSync(root, { recursive: true, force: true }));

const POLICY = writeToyModel(join(root, "policy"));
/** Its tokenizer is the policy's (byte-level, ids past 40); its embedding has 40 rows. */
const SMALL = writeToyModel(join(root, "small"), { vocabSize: 40 });
const DATA = writeJsonl(join(root, "pairs.jsonl"), toyPairs(8));
const names = (tokenizer: string) =>
  new RegExp(`token id \\d+.*the tokenizer of ${tokenizer} gives ids .*${SMALL}/config\\.json: vocab_size 40, ids 0`);

function recipe(extra: Record<string, unknown>) {
  return loadTrainConfig({
    model_name_or_path: POLICY,
    dataset_mixer: { [DATA]: 1.0 },
    output_dir: join(root, `run-${Object.keys(extra).join("-")}`),
    per_device_train_batch_size: 4,
    max_length: 48,
    max_prompt_length: 24,
    max_steps: 1,
    ...extra,
  }).config;
}

describe("training", () => {
  it("a ref_model or a policy with a smaller vocabulary is refused before anything is written", async () => {
    for (const extra of [{ ref_model: SMALL }, { model_name_or_path: SMALL }]) {
      const config = recipe(extra);
      await assert.rejects(train(config), (e: Error) => {
        assert.ok(e instanceof VocabularyError, String(e));
        assert.match(e.message, /^pair \d+ of the training split, (chosen|rejected): token id/);
        assert.match(e.message, names(config.modelNameOrPath));
        return true;
      });
      assert.ok(!existsSync(config.outputDir), "nothing was written");
    }
  });
});

describe("eval", () => {
  it("--ref with a smaller vocabulary names the data file and line", async () => {
    const options = { model: POLICY, ref: SMALL, data: DATA, maxLength: 48, maxPromptLength: 24, batchSize: 4 };
    await assert.rejects(
      evaluatePairwiseFile(options),
      (e: Error) =>
        e instanceof VocabularyError &&
        e.message.startsWith(`${DATA}:1, chosen: token id`) &&
        names(POLICY).test(e.message),
    );
  });
});

describe("the command line", () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args], {
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, OMP_NUM_THREADS: "1" },
    });

  it("generate names the prompt", () => {
    const r = cli("generate", "--model", SMALL, "--prompt", "say apple", "--max-new-tokens", "2", "--device", "cpu");
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /prompt 1: token id/);
    assert.match(r.stderr, names(SMALL));
    assert.doesNotMatch(r.stderr, /index out of range/);
  });

  it("data build names the prompt's file and line, before sampling", () => {
    const prompts = writeJsonl(join(root, "prompts.jsonl"), [{ prompt: "say apple" }]);
    writeFileSync(join(root, "len.mjs"), "export function score(p, r) { return r.length; }\n");
    const out = join(root, "built.jsonl");
    const r = cli(
      "data",
      "build",
      "--task",
      "text",
      "--model",
      SMALL,
      "--prompts",
      prompts,
      "--scorer",
      join(root, "len.mjs"),
      "--out",
      out,
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /prompts\.jsonl:1: the prompt: token id/);
    assert.match(r.stderr, names(SMALL));
    assert.ok(!existsSync(`${out}.progress.jsonl`));
    const math = cli(
      "data",
      "build",
      "--model",
      SMALL,
      "--prompts",
      prompts,
      "--scorer",
      join(root, "len.mjs"),
      "--out",
      out,
    );
    assert.equal(math.status, 1, math.stderr);
    assert.match(math.stderr, /prompts\.jsonl: prompt 1: token id/);
    assert.match(math.stderr, names(SMALL));
    assert.ok(!existsSync(out));
  });
});

// dataset_mixer: each file contributes its first floor(fraction * n) rows, the mix is shuffled
// deterministically by the seed, and the held-out set is a fraction, a count, or another file.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { holdOut, mixDatasets, shuffled } from "../../src/data/mixer.js";
import { DataError } from "../../src/data/records.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { prepareData } from "../../src/train/trainer.js";
import { writePreferenceParquet } from "../helpers/parquet.js";
import { writeByteLevelTokenizer } from "../helpers/tokenizers.js";
import { tempDir, writeJsonl } from "../helpers/toy.js";

let root: string;
let fileA: string; // 10 rows "a0".."a9"
let fileB: string; // 20 rows "b0".."b19" (Parquet)
const rows = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    prompt: `${tag}${i}`,
    chosen: ` yes ${tag}${i}`,
    rejected: ` no ${tag}${i}`,
    score_chosen: 8,
    score_rejected: 2,
  }));

before(() => {
  root = tempDir("omni-dpo-mixer-");
  fileA = writeJsonl(join(root, "a.jsonl"), rows("a", 10));
  fileB = writePreferenceParquet(join(root, "b.parquet"), rows("b", 20));
});
after(() => rmSync(root, { recursive: true, force: true }));

const prompts = (records: { prompt: unknown }[]) => records.map((r) => r.prompt as string);
const range = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i}`);

describe("mixDatasets", () => {
  it("takes the first floor(fraction * n) rows of each file", async () => {
    const mixed = await mixDatasets({ [fileA]: 0.55, [fileB]: 0.25 }, 42);
    // floor(5.5) = 5 from a, floor(5) = 5 from b: exactly the first ones, whatever the order.
    assert.deepEqual(prompts(mixed).sort(), [...range("a", 5), ...range("b", 5)].sort());
    const whole = await mixDatasets({ [fileA]: 1.0, [fileB]: 1.0 }, 42);
    assert.equal(whole.length, 30);
    const list = await mixDatasets([fileA, fileB], 42);
    assert.deepEqual(prompts(list), prompts(whole), "a list of paths means each file whole");
  });

  it("shuffles deterministically: the same seed gives the same order, another seed another", async () => {
    const mixer = { [fileA]: 1.0, [fileB]: 1.0 };
    const one = prompts(await mixDatasets(mixer, 7));
    const again = prompts(await mixDatasets(mixer, 7));
    const other = prompts(await mixDatasets(mixer, 8));
    assert.deepEqual(again, one);
    assert.notDeepEqual(other, one);
    assert.deepEqual([...other].sort(), [...one].sort());
    assert.notDeepEqual(one, [...range("a", 10), ...range("b", 20)], "the mix is shuffled, not concatenated");
    // The shuffle itself is a seeded permutation.
    assert.deepEqual(shuffled([1, 2, 3, 4, 5, 6, 7, 8], 3), shuffled([1, 2, 3, 4, 5, 6, 7, 8], 3));
    assert.deepEqual(shuffled([1, 2, 3, 4, 5, 6, 7, 8], 3).sort(), [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("rejects fractions outside (0, 1] and an empty mixer, naming the file", async () => {
    await assert.rejects(
      mixDatasets({ [fileA]: 1.5 }, 1),
      (e: unknown) => e instanceof DataError && e.message.includes(fileA) && e.message.includes("1.5"),
    );
    await assert.rejects(mixDatasets({ [fileA]: 0 }, 1), DataError);
    await assert.rejects(mixDatasets({}, 1), /no datasets/);
  });
});

describe("holdOut", () => {
  const items = Array.from({ length: 10 }, (_, i) => i);

  it("a size below 1 is a fraction, taken from the end", () => {
    assert.deepEqual(holdOut(items, 0.2), { train: [0, 1, 2, 3, 4, 5, 6, 7], test: [8, 9] });
    assert.deepEqual(holdOut(items, 0).test, []);
  });

  it("a size of 1 or more is a count", () => {
    assert.deepEqual(holdOut(items, 3), { train: [0, 1, 2, 3, 4, 5, 6], test: [7, 8, 9] });
    assert.deepEqual(holdOut(items, 1).test, [9]);
  });

  it("a split that leaves no training records, or a negative one, is an error", () => {
    assert.throws(() => holdOut(items, 10), /leaves no training records/);
    assert.throws(() => holdOut(items, -1), DataError);
  });
});

describe("the trainer's data: test_split_size or eval_file", () => {
  let model: string;
  before(() => {
    model = join(root, "tok");
    writeByteLevelTokenizer(model);
  });

  const config = (extra: Record<string, unknown>) =>
    loadTrainConfig({
      model_name_or_path: model,
      output_dir: join(root, "out"),
      max_length: 64,
      max_prompt_length: 32,
      seed: 5,
      dataset_mixer: { [fileA]: 1.0, [fileB]: 0.5 },
      ...extra,
    }).config;
  const decodePrompts = (
    pairs: { chosenInputIds: number[]; promptLength: number }[],
    tok: { decode: (ids: number[], o: object) => string },
  ) => pairs.map((p) => tok.decode(p.chosenInputIds.slice(0, p.promptLength), { skipSpecialTokens: true }));

  it("test_split_size holds out the end of the shuffled mix", async () => {
    const data = await prepareData(config({ test_split_size: 0.25 }));
    assert.equal(data.train.length + data.eval.length, 20);
    assert.equal(data.eval.length, 5);
    const mixed = prompts(await mixDatasets({ [fileA]: 1.0, [fileB]: 0.5 }, 5));
    assert.deepEqual(decodePrompts(data.eval, data.tokenizer), mixed.slice(15));
    assert.deepEqual(decodePrompts(data.train, data.tokenizer), mixed.slice(0, 15));
  });

  it("eval_file is the held-out set instead of a split: every mixed row trains", async () => {
    const evalFile = writeJsonl(join(root, "eval.jsonl"), rows("e", 4));
    const data = await prepareData(config({ eval_file: evalFile, test_split_size: 0.25 }));
    assert.equal(data.train.length, 20);
    assert.deepEqual(decodePrompts(data.eval, data.tokenizer), range("e", 4), "the eval file in its own order");
  });

  it("no split and no eval_file: no eval set", async () => {
    const data = await prepareData(config({}));
    assert.equal(data.train.length, 20);
    assert.equal(data.eval.length, 0);
  });
});

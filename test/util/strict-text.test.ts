// The files a user hands the trainer besides data (the recipe YAML, a model's config.json and
// generation_config.json) are strict UTF-8 too: a BOM at the start is accepted, and invalid
// bytes are an error naming the file and line, never settings read with replacement characters.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../../src/models/auto.js";
import { readGenerationConfig } from "../../src/models/generation-config.js";
import { ConfigError, loadTrainConfig } from "../../src/train/config.js";
import { tempDir, writeToyModel } from "../helpers/toy.js";

let root: string;
let model: string;
before(() => {
  root = tempDir("omni-dpo-strict-text-");
  model = writeToyModel(join(root, "model"));
});
after(() => rmSync(root, { recursive: true, force: true }));

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const INVALID = Buffer.from([0xc3, 0x28]); // a two-byte lead followed by a non-continuation byte

function recipe(prefix: Buffer, secondLine: Buffer): string {
  const file = join(root, `recipe-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    Buffer.concat([
      prefix,
      Buffer.from(`model_name_or_path: ${model}\n`),
      secondLine,
      Buffer.from(`output_dir: ${join(root, "out")}\ndataset_mixer: {${join(root, "d.jsonl")}: 1.0}\n`),
    ]),
  );
  return file;
}

describe("strict UTF-8 outside the data files", () => {
  it("a recipe YAML with a BOM reads as without one; invalid bytes name the file and line", () => {
    const plain = loadTrainConfig(recipe(Buffer.alloc(0), Buffer.from("learning_rate: 1.0e-6\n"))).config;
    const bom = loadTrainConfig(recipe(BOM, Buffer.from("learning_rate: 1.0e-6\n"))).config;
    assert.equal(bom.modelNameOrPath, plain.modelNameOrPath);
    assert.equal(bom.learningRate, 1e-6);
    const bad = recipe(Buffer.alloc(0), Buffer.concat([Buffer.from("run_name: caf"), INVALID, Buffer.from("\n")]));
    assert.throws(
      () => loadTrainConfig(bad),
      (e: Error) => e instanceof ConfigError && e.message.startsWith(`${bad}:2: invalid UTF-8 at byte`),
    );
  });

  it("config.json and generation_config.json: BOM accepted, invalid bytes an error naming the file and line", () => {
    const dir = writeToyModel(join(root, "bom-model"));
    for (const name of ["config.json", "generation_config.json"])
      writeFileSync(join(dir, name), Buffer.concat([BOM, readFileSync(join(dir, name))]));
    const m = loadModel(dir);
    const { file: _bomFile, ...withBom } = readGenerationConfig(dir)!;
    const { file: _plainFile, ...plain } = readGenerationConfig(model)!;
    assert.deepEqual(withBom, plain);
    m.dispose();
    for (const name of ["config.json", "generation_config.json"]) {
      const broken = writeToyModel(join(root, `broken-${name}`));
      const text = readFileSync(join(broken, name));
      writeFileSync(join(broken, name), Buffer.concat([text.subarray(0, 2), INVALID, text.subarray(2)]));
      const read = name === "config.json" ? () => loadModel(broken).dispose() : () => readGenerationConfig(broken);
      assert.throws(read, (e: Error) => e.message.startsWith(`${join(broken, name)}:2: invalid UTF-8 at byte 2`));
    }
  });
});

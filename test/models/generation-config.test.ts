// generation_config.json: read when a model directory loads (eos_token_id as a number or a
// list, bos and pad ids), written when one is saved (ids and the file's other fields, keys
// sorted, as transformers writes it), derived from config.json where a directory has none; bad
// fields are errors naming the file and the field. `omni-dpo generate` stops on the model's EOS
// ids: with two listed, each prompt stops at whichever it generates.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { torch } from "../../src/index.js";
import { createModel, loadModel, saveModel } from "../../src/models/auto.js";
import type { RawConfig } from "../../src/models/config.js";
import { generate } from "../../src/models/generate.js";
import { readGenerationConfig, stopTokenIds } from "../../src/models/generation-config.js";
import { Tokenizer } from "../../src/text/index.js";
import { writeByteLevelTokenizer } from "../helpers/tokenizers.js";
import { TINY_LLAMA, tempDir } from "../helpers/toy.js";

torch.setNumThreads(1); // tiny models: thread-pool overhead would dominate
const root = tempDir("omni-dpo-generation-config-");
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const newDir = (what: string) => {
  const d = join(root, `${dirs++}-${what}`);
  mkdirSync(d);
  return d;
};
const readJson = (file: string) => JSON.parse(readFileSync(file, "utf8"));

const LLAMA: RawConfig = { ...TINY_LLAMA, bos_token_id: 1, eos_token_id: 2 };

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail("expected an error");
}

test("readGenerationConfig: eos_token_id as a number or a list, bos and pad ids, the other fields kept; null without the file", () => {
  const dir = newDir("read");
  assert.equal(readGenerationConfig(dir), null);
  const file = join(dir, "generation_config.json");
  writeFileSync(
    file,
    JSON.stringify({
      bos_token_id: 1,
      eos_token_id: [7, 9],
      pad_token_id: null,
      do_sample: true,
      temperature: 0.6,
      transformers_version: "4.45.0",
    }),
  );
  assert.deepEqual(readGenerationConfig(dir), {
    eosTokenIds: [7, 9],
    bosTokenId: 1,
    padTokenId: undefined,
    file,
    extra: { do_sample: true, temperature: 0.6, transformers_version: "4.45.0" },
  });
  writeFileSync(file, JSON.stringify({ eos_token_id: 2, pad_token_id: 0 }));
  const one = readGenerationConfig(dir)!;
  assert.deepEqual([one.eosTokenIds, one.bosTokenId, one.padTokenId], [[2], undefined, 0]);
});

test("bad generation_config.json fields are errors naming the file and the field", () => {
  const dir = newDir("bad");
  const file = join(dir, "generation_config.json");
  const cases: [unknown, RegExp][] = [
    [{ eos_token_id: "2" }, /field eos_token_id must be a token id/],
    [{ eos_token_id: 1.5 }, /field eos_token_id must be a token id/],
    [{ eos_token_id: [3, -1] }, /field eos_token_id\[1\] must be a token id .*got -1/],
    [{ bos_token_id: "<s>" }, /field bos_token_id must be a token id/],
    [{ pad_token_id: [0] }, /field pad_token_id must be a token id/],
    [[2], /must hold a JSON object/],
  ];
  for (const [content, pattern] of cases) {
    writeFileSync(file, JSON.stringify(content));
    const msg = message(() => readGenerationConfig(dir));
    assert.ok(msg.startsWith(`${file}: `), msg);
    assert.match(msg, pattern);
  }
  writeFileSync(file, "{ nope");
  assert.match(
    message(() => readGenerationConfig(dir)),
    new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not valid JSON`),
  );
  // loadModel reports it before reading any weights
  torch.manualSeed(0);
  const model = createModel(LLAMA);
  saveModel(model, dir);
  model.dispose();
  writeFileSync(file, JSON.stringify({ eos_token_id: [2, "x"] }));
  assert.match(
    message(() => loadModel(dir)),
    /generation_config\.json: field eos_token_id\[1\] must be a token id/,
  );
});

test("loadModel reads generation_config.json; saveModel writes its ids and other fields back, keys sorted", () => {
  torch.manualSeed(1);
  const model = createModel(LLAMA);
  const dir = newDir("roundtrip");
  saveModel(model, dir);
  model.dispose();
  const file = join(dir, "generation_config.json");
  writeFileSync(
    file,
    JSON.stringify({ transformers_version: "4.45.0", eos_token_id: [5, 9], bos_token_id: 1, top_p: 0.9 }),
  );
  const loaded = loadModel(dir);
  assert.deepEqual(loaded.generationConfig.eosTokenIds, [5, 9]);
  assert.equal(loaded.generationConfig.file, file);
  const out = newDir("roundtrip-saved");
  saveModel(loaded, out);
  const text = readFileSync(join(out, "generation_config.json"), "utf8");
  assert.deepEqual(Object.keys(JSON.parse(text)), ["bos_token_id", "eos_token_id", "top_p", "transformers_version"]);
  assert.deepEqual(JSON.parse(text), {
    bos_token_id: 1,
    eos_token_id: [5, 9],
    top_p: 0.9,
    transformers_version: "4.45.0",
  });
  // and a reload of the saved directory has the same ids
  const again = loadModel(out);
  assert.deepEqual(again.generationConfig.eosTokenIds, [5, 9]);
  loaded.dispose();
  again.dispose();
});

test("without generation_config.json the ids come from config.json, and saving writes them as transformers does", () => {
  torch.manualSeed(2);
  const model = createModel({ ...LLAMA, eos_token_id: [2, 3], pad_token_id: 0 });
  assert.deepEqual(model.generationConfig, {
    eosTokenIds: [2, 3],
    bosTokenId: 1,
    padTokenId: 0,
    file: null,
    extra: {},
  });
  const dir = newDir("from-config");
  saveModel(model, dir);
  model.dispose();
  assert.deepEqual(readJson(join(dir, "generation_config.json")), {
    _from_model_config: true,
    bos_token_id: 1,
    eos_token_id: [2, 3],
    pad_token_id: 0,
  });
  unlinkSync(join(dir, "generation_config.json"));
  const loaded = loadModel(dir);
  assert.deepEqual(loaded.generationConfig, {
    eosTokenIds: [2, 3],
    bosTokenId: 1,
    padTokenId: 0,
    file: null,
    extra: {},
  });
  loaded.dispose();
  // a bad id in config.json names config.json
  assert.match(
    message(() => createModel({ ...LLAMA, eos_token_id: "2" })),
    /config\.json: field eos_token_id must be a token id/,
  );
});

test("stopTokenIds: the generation config's EOS ids when the directory had the file, else the tokenizer's EOS", () => {
  const fromFile = { eosTokenIds: [5, 9], file: "/m/generation_config.json", extra: {} };
  assert.deepEqual(stopTokenIds(fromFile, 2), [5, 9]);
  assert.deepEqual(stopTokenIds({ ...fromFile, eosTokenIds: [] }, 2), [2]);
  assert.deepEqual(stopTokenIds({ eosTokenIds: [7], file: null, extra: {} }, 2), [2]);
  assert.deepEqual(stopTokenIds({ eosTokenIds: [7], file: null, extra: {} }, undefined), []);
});

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

test("omni-dpo generate stops at either of two EOS ids listed in generation_config.json", () => {
  const dir = newDir("cli");
  const tok = writeByteLevelTokenizer(dir);
  torch.manualSeed(5);
  const model = createModel(
    { ...LLAMA, vocab_size: tok.vocabSize, bos_token_id: tok.bosTokenId, eos_token_id: tok.eosTokenId },
    { std: 0.3 },
  );
  saveModel(model, dir);
  model.dispose();
  unlinkSync(join(dir, "generation_config.json"));

  // What greedy decoding makes of each prompt with no EOS at all, as the CLI would encode them.
  const prompts = ["Hello world", "The quick brown fox"];
  const tokenizer = Tokenizer.fromPretrainedSync(dir);
  const loaded = loadModel(dir);
  const free = generate(
    loaded,
    prompts.map((p) => tokenizer.encode(p)),
    { maxNewTokens: 10, padTokenId: tokenizer.padTokenId },
  ).tokens;
  loaded.dispose();
  // Two ids such that the first prompt reaches `a` before `b` and the second `b` before `a`.
  const firstOf = (row: number[], ids: number[]) => row.findIndex((t) => ids.includes(t));
  let pick: [number, number] | null = null;
  for (const a of free[0].slice(1)) {
    for (const b of free[1].slice(1)) {
      if (a === b || a === tok.eosTokenId || b === tok.eosTokenId) continue;
      if (free[0][firstOf(free[0], [a, b])] === a && free[1][firstOf(free[1], [a, b])] === b) {
        pick = [a, b];
        break;
      }
    }
    if (pick) break;
  }
  assert.ok(pick, `no two stopping ids in ${JSON.stringify(free)}`);
  const [a, b] = pick;
  writeFileSync(
    join(dir, "generation_config.json"),
    JSON.stringify({ bos_token_id: tok.bosTokenId, eos_token_id: [a, b] }),
  );

  const r = spawnSync(
    process.execPath,
    [
      CLI,
      "generate",
      "--model",
      dir,
      "--prompt",
      prompts[0],
      "--prompt",
      prompts[1],
      "--max-new-tokens",
      "10",
      "--json",
      "--device",
      "cpu",
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { prompt: string; completion: string; finish_reason: string; tokens: number });
  const expected = [free[0].slice(0, firstOf(free[0], [a, b]) + 1), free[1].slice(0, firstOf(free[1], [a, b]) + 1)];
  assert.deepEqual(
    rows.map((row) => [row.finish_reason, row.tokens]),
    expected.map((e) => ["eos", e.length]),
  );
  assert.deepEqual(
    rows.map((row) => row.completion),
    expected.map((e) => tokenizer.decode(e, { skipSpecialTokens: true })),
  );
});

test("CLI: --top-p outside [0, 1], a negative --top-k or --temperature, a --seed out of range: usage errors naming the flag", () => {
  const cases: [string[], string][] = [
    [["--top-p", "2"], "--top-p must be a probability from 0 to 1, got '2'"],
    [["--top-p=-0.5"], "--top-p must be a probability from 0 to 1, got '-0.5'"],
    [["--top-k=-1"], "--top-k must be a non-negative integer, got '-1'"],
    [["--temperature=-1"], "--temperature must be a non-negative number, got '-1'"],
    [["--seed", "1e20"], "--seed must be an integer from 0 to 9007199254740991 (2^53 - 1), got '1e20'"],
    [["--seed=-3"], "--seed must be an integer from 0 to 9007199254740991 (2^53 - 1), got '-3'"],
  ];
  for (const [flags, message] of cases) {
    const r = spawnSync(process.execPath, [CLI, "generate", "--model", "no-such-model", "--prompt", "hi", ...flags], {
      encoding: "utf8",
    });
    assert.equal(r.status, 2, `${flags.join(" ")}: ${r.stderr}`);
    assert.ok(r.stderr.includes(message), `${flags.join(" ")}: ${r.stderr}`);
  }
});

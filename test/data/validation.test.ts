// Bad preference files: every problem names the file, the line (JSON Lines), record (JSON
// array) or row (Parquet) and the field; all problems of a file come together; and nothing is
// trained or written when the data is bad.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { readPreferenceFile } from "../../src/data/readers.js";
import { DataError } from "../../src/data/records.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { packageRoot } from "../../src/util/package-root.js";
import { writePreferenceParquet } from "../helpers/parquet.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";
import { problemsOf } from "./problems.js";

let root: string;
before(() => {
  root = tempDir("omni-dpo-validation-");
});
after(() => rmSync(root, { recursive: true, force: true }));

const GOOD = { prompt: "say apple:", chosen: " apple apple", rejected: " river", score_chosen: 8, score_rejected: 2 };

function hasProblem(problems: string[], ...parts: string[]): void {
  assert.ok(
    problems.some((p) => parts.every((part) => p.includes(part))),
    `no problem mentions all of ${JSON.stringify(parts)}; problems:\n  ${problems.join("\n  ")}`,
  );
}

describe("JSON Lines: file, line and field", () => {
  it("names a missing field", async () => {
    const file = writeJsonl(join(root, "missing.jsonl"), [
      GOOD,
      { prompt: "p", chosen: "c", score_chosen: 1, score_rejected: 0 },
    ]);
    const problems = await problemsOf(() => readPreferenceFile(file));
    assert.deepEqual(problems, [`${file}:2: field 'rejected': missing`]);
  });

  it("names a field of the wrong type", async () => {
    const file = writeJsonl(join(root, "type.jsonl"), [GOOD, GOOD, { ...GOOD, chosen: 42 }]);
    const problems = await problemsOf(() => readPreferenceFile(file));
    assert.equal(problems.length, 1);
    hasProblem(problems, `${file}:3:`, "'chosen'", "a number");
  });

  it("names an empty response", async () => {
    const file = writeJsonl(join(root, "empty.jsonl"), [{ ...GOOD, rejected: "   " }]);
    const problems = await problemsOf(() => readPreferenceFile(file));
    assert.deepEqual(problems, [`${file}:1: field 'rejected': empty response`]);
  });

  it('names a score written as the string "NaN"', async () => {
    const file = writeJsonl(join(root, "nan-string.jsonl"), [GOOD, { ...GOOD, score_chosen: "NaN" }]);
    const problems = await problemsOf(() => readPreferenceFile(file));
    assert.equal(problems.length, 1);
    hasProblem(problems, `${file}:2:`, "'score_chosen'", "expected a number", "string");
  });

  it("names a score that is finite in JSON but overflows float32, and a margin that does", async () => {
    const file = writeJsonl(join(root, "overflow.jsonl"), [
      GOOD,
      { ...GOOD, score_chosen: 1e39 },
      { ...GOOD, score_rejected: -3e38, score_chosen: 3e38 },
      { ...GOOD, score_chosen: 3.4e38, score_rejected: 1 },
    ]);
    const problems = await problemsOf(() => readPreferenceFile(file));
    assert.equal(problems.length, 2, problems.join("\n"));
    hasProblem(problems, `${file}:2:`, "'score_chosen'", "1e+39 overflows float32");
    hasProblem(problems, `${file}:3:`, "'score_chosen' and 'score_rejected'", "overflows float32");
  });

  it("names a line that is not valid JSON, counting blank lines", async () => {
    const file = join(root, "invalid.jsonl");
    writeFileSync(file, `${JSON.stringify(GOOD)}\n\n{"prompt": "x", "chosen": \n${JSON.stringify(GOOD)}\n`);
    const problems = await problemsOf(() => readPreferenceFile(file));
    assert.equal(problems.length, 1);
    hasProblem(problems, `${file}:3:`, "not valid JSON");
  });

  it("names a message list whose last message is not the assistant's", async () => {
    const file = writeJsonl(join(root, "roles.jsonl"), [
      {
        chosen: [
          { role: "user", content: "hi" },
          { role: "assistant", content: "hello" },
        ],
        rejected: [
          { role: "assistant", content: "hello" },
          { role: "user", content: "bye" },
        ],
      },
    ]);
    const problems = await problemsOf(() => readPreferenceFile(file));
    assert.equal(problems.length, 1);
    hasProblem(problems, `${file}:1:`, "'rejected'", "last message must be the assistant's", "'user'");
  });

  it("names bad messages and an empty final answer inside message lists", async () => {
    const file = writeJsonl(join(root, "messages.jsonl"), [
      {
        chosen: [
          { role: "user", content: "hi" },
          { role: "assistant", content: " " },
        ],
        rejected: [
          { role: "user", content: "hi" },
          { role: "assistant", content: "no" },
        ],
      },
      {
        chosen: [{ role: "user" }, { role: "assistant", content: "ok" }],
        rejected: [
          { role: "user", content: "hi" },
          { role: "assistant", content: "no" },
        ],
      },
      { chosen: [{ role: "assistant", content: "ok" }], rejected: [{ role: "assistant", content: "no" }] },
      { prompt: "hi", chosen: [{ role: "assistant", content: "ok" }], rejected: "no" },
    ]);
    const problems = await problemsOf(() => readPreferenceFile(file));
    hasProblem(problems, `${file}:1:`, "'chosen'", "empty response");
    hasProblem(problems, `${file}:2:`, "'chosen[0]'", "message");
    hasProblem(problems, `${file}:3:`, "'chosen'", "conversation before the answer");
    hasProblem(problems, `${file}:4:`, "'chosen' and 'rejected'", "both");
    assert.equal(problems.length, 4, problems.join("\n"));
  });

  it("lists every problem of a file together, invalid JSON lines included", async () => {
    const file = join(root, "many.jsonl");
    writeFileSync(
      file,
      [
        JSON.stringify(GOOD),
        JSON.stringify({ ...GOOD, prompt: undefined }), // 2: prompt missing
        "not json at all", // 3
        JSON.stringify({ ...GOOD, chosen: "", rejected: 7 }), // 4: two problems
        JSON.stringify(GOOD),
        JSON.stringify({ ...GOOD, score_rejected: null }), // 6: one score without the other
      ].join("\n") + "\n",
    );
    const problems = await problemsOf(() => readPreferenceFile(file));
    hasProblem(problems, `${file}:2:`, "'prompt'", "missing");
    hasProblem(problems, `${file}:3:`, "not valid JSON");
    hasProblem(problems, `${file}:4:`, "'chosen'", "empty response");
    hasProblem(problems, `${file}:4:`, "'rejected'", "a number");
    hasProblem(problems, `${file}:6:`, "'score_rejected'", "missing");
    assert.equal(problems.length, 5, problems.join("\n"));
    // The error's message carries them all as well.
    const error = new DataError(problems);
    for (const p of problems) assert.ok(error.message.includes(p));
  });
});

describe("JSON arrays report records, Parquet reports rows", () => {
  it("JSON array: 'record N'", async () => {
    const file = join(root, "array.json");
    writeFileSync(
      file,
      JSON.stringify([GOOD, GOOD, { ...GOOD, chosen: null }, { ...GOOD, score_chosen: "high" }], null, 2),
    );
    const problems = await problemsOf(() => readPreferenceFile(file));
    assert.deepEqual(problems.length, 2);
    hasProblem(problems, `${file} record 3:`, "'chosen'", "missing");
    hasProblem(problems, `${file} record 4:`, "'score_chosen'", "expected a number");
  });

  it("JSON array that is not valid JSON names the file", async () => {
    const file = join(root, "broken.json");
    writeFileSync(file, `[${JSON.stringify(GOOD)}, {"prompt": ]`);
    const problems = await problemsOf(() => readPreferenceFile(file));
    assert.equal(problems.length, 1);
    hasProblem(problems, file, "not valid JSON");
  });

  it("Parquet: 'row N', a NaN score, an empty response and a missing field", async () => {
    const file = writePreferenceParquet(join(root, "bad.parquet"), [
      GOOD,
      { ...GOOD, score_chosen: Number.NaN },
      { ...GOOD, rejected: "" },
      { ...GOOD, chosen: null },
    ]);
    const problems = await problemsOf(() => readPreferenceFile(file));
    hasProblem(problems, `${file} row 2:`, "'score_chosen'", "NaN");
    hasProblem(problems, `${file} row 3:`, "'rejected'", "empty response");
    hasProblem(problems, `${file} row 4:`, "'chosen'", "missing");
    assert.equal(problems.length, 3, problems.join("\n"));
  });

  it("Parquet: a score column of strings is the wrong type", async () => {
    const file = writePreferenceParquet(join(root, "strings.parquet"), [
      { ...GOOD, score_chosen: "8" },
      { ...GOOD, score_chosen: "NaN" },
    ]);
    const problems = await problemsOf(() => readPreferenceFile(file));
    hasProblem(problems, `${file} row 1:`, "'score_chosen'", "expected a number");
    hasProblem(problems, `${file} row 2:`, "'score_chosen'", "expected a number");
  });

  it("a file that does not exist, or has an unknown extension, is named", async () => {
    const gone = join(root, "nope.jsonl");
    hasProblem(await problemsOf(() => readPreferenceFile(gone)), gone, "not found");
    const csv = join(root, "data.csv");
    writeFileSync(csv, "prompt,chosen,rejected\n");
    hasProblem(await problemsOf(() => readPreferenceFile(csv)), csv, ".csv");
  });
});

describe("bad data stops a run before anything is written", () => {
  let model: string;
  before(() => {
    model = writeToyModel(join(root, "model"));
  });

  function configFor(data: string, out: string) {
    return loadTrainConfig({
      model_name_or_path: model,
      dataset_mixer: { [data]: 1.0 },
      output_dir: out,
      pref_loss: "uni_dpo",
      max_length: 64,
      max_prompt_length: 32,
      per_device_train_batch_size: 4,
      num_train_epochs: 1,
      logging_steps: 1,
    }).config;
  }

  it("train() throws the DataError and leaves no output_dir", async () => {
    const rows: Record<string, unknown>[] = toyPairs(16).map((p) => ({ ...p }));
    rows[11] = { ...rows[11], score_chosen: "NaN" };
    const data = writeJsonl(join(root, "bad-run.jsonl"), rows);
    const out = join(root, "out-bad");
    const problems = await problemsOf(() => train(configFor(data, out)));
    assert.equal(problems.length, 1);
    hasProblem(problems, `${data}:12:`, "'score_chosen'");
    assert.equal(existsSync(out), false, "output_dir must not exist after a run on bad data");
  });

  it("a Parquet NaN score stops the run too", async () => {
    const rows: Record<string, unknown>[] = toyPairs(8).map((p) => ({ ...p }));
    rows[4] = { ...rows[4], score_rejected: Number.NaN };
    const data = writePreferenceParquet(join(root, "bad-run.parquet"), rows);
    const out = join(root, "out-bad-parquet");
    hasProblem(await problemsOf(() => train(configFor(data, out))), `${data} row 5:`, "'score_rejected'", "NaN");
    assert.equal(existsSync(out), false);
  });

  it("omni_dpo without scores names the first records that lack them, before any output", async () => {
    const rows = toyPairs(8).map(({ score_chosen: _c, score_rejected: _r, ...rest }) => rest);
    const data = writeJsonl(join(root, "unscored.jsonl"), rows);
    const out = join(root, "out-unscored");
    hasProblem(await problemsOf(() => train(configFor(data, out))), `${data}:1:`, "'score_chosen'", "missing");
    assert.equal(existsSync(out), false);
  });

  it("the CLI exits 1, prints file:line and field, and writes no output_dir", () => {
    const rows: Record<string, unknown>[] = toyPairs(16).map((p) => ({ ...p }));
    rows[2] = { ...rows[2], chosen: [] };
    const data = writeJsonl(join(root, "bad-cli.jsonl"), rows);
    const out = join(root, "out-cli");
    const yaml = join(root, "bad-cli.yaml");
    writeFileSync(
      yaml,
      `model_name_or_path: ${model}\ndataset_mixer:\n  ${data}: 1.0\noutput_dir: ${out}\nmax_length: 64\nmax_prompt_length: 32\n`,
    );
    const r = spawnSync(process.execPath, [join(packageRoot(), "dist/src/cli/main.js"), "train", yaml], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${data.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3: field 'chosen'`));
    assert.equal(existsSync(out), false);
  });
});

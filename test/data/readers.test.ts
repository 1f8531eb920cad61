// Readers: the same records read from JSON Lines, a JSON array and Parquet come out the same,
// with optional scores and conversational (message-list) records, each keeping its provenance.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parquetWriteFile } from "hyparquet-writer";
import { readPreferenceFile, readPromptFile, readPromptRows, readRows } from "../../src/data/readers.js";
import { DataError, KEPT_PROBLEMS, type PreferenceRecord } from "../../src/data/records.js";
import { writePreferenceParquet } from "../helpers/parquet.js";
import { tempDir, writeJsonl } from "../helpers/toy.js";

let root: string;
before(() => {
  root = tempDir("omni-dpo-readers-");
});
after(() => rmSync(root, { recursive: true, force: true }));

const SCORED = [
  { prompt: "What is 7 times 6?", chosen: " 42.", rejected: " 36.", score_chosen: 9.5, score_rejected: 1.25 },
  { prompt: "Say hello.", chosen: " Hello!", rejected: " No.", score_chosen: 7, score_rejected: 3 },
  {
    prompt: "Café 🤖 中文\n\tand more",
    chosen: " ünïcödé",
    rejected: " ascii",
    score_chosen: -1.5,
    score_rejected: -2,
  },
];

const msg = (role: string, content: string) => ({ role, content });
const CONVERSATIONS = [
  {
    chosen: [msg("user", "Hi there"), msg("assistant", "Hello! How can I help?")],
    rejected: [msg("user", "Hi there"), msg("assistant", "Go away.")],
    score_chosen: 8,
    score_rejected: 2,
  },
  {
    chosen: [
      msg("system", "Be brief."),
      msg("user", "2+2?"),
      msg("assistant", "4"),
      msg("user", "and 3+3?"),
      msg("assistant", "6"),
    ],
    rejected: [
      msg("system", "Be brief."),
      msg("user", "2+2?"),
      msg("assistant", "4"),
      msg("user", "and 3+3?"),
      msg("assistant", "7"),
    ],
    score_chosen: 9,
    score_rejected: 1,
  },
];

/** The content of records without their provenance. */
function contents(records: PreferenceRecord[]) {
  return records.map(({ source: _source, ...rest }) => rest);
}

/** Writes `rows` as .jsonl, .json (array) and .parquet, reads each back. */
async function readAllFormats(name: string, rows: Record<string, unknown>[]) {
  const jsonl = writeJsonl(join(root, `${name}.jsonl`), rows);
  const json = join(root, `${name}.json`);
  writeFileSync(json, JSON.stringify(rows, null, 2));
  const parquet = writePreferenceParquet(join(root, `${name}.parquet`), rows);
  return {
    jsonl: await readPreferenceFile(jsonl),
    json: await readPreferenceFile(json),
    parquet: await readPreferenceFile(parquet),
    files: { jsonl, json, parquet },
  };
}

describe("the three formats agree", () => {
  it("scored text records", async () => {
    const r = await readAllFormats("scored", SCORED);
    const expected = SCORED.map((s) => ({
      prompt: s.prompt,
      chosen: s.chosen,
      rejected: s.rejected,
      scoreChosen: s.score_chosen,
      scoreRejected: s.score_rejected,
    }));
    assert.deepEqual(contents(r.jsonl), expected);
    assert.deepEqual(contents(r.json), expected);
    assert.deepEqual(contents(r.parquet), expected);
  });

  it("scores are optional (absent in every record)", async () => {
    const rows = SCORED.map(({ prompt, chosen, rejected }) => ({ prompt, chosen, rejected }));
    const r = await readAllFormats("unscored", rows);
    for (const records of [r.jsonl, r.json, r.parquet]) {
      assert.equal(records.length, 3);
      for (const rec of records) {
        assert.equal(rec.scoreChosen, undefined);
        assert.equal(rec.scoreRejected, undefined);
      }
      assert.deepEqual(
        records.map((x) => x.chosen),
        SCORED.map((s) => s.chosen),
      );
    }
  });

  it("message-list records without a prompt field (prompt taken from the conversation)", async () => {
    const r = await readAllFormats("conversations", CONVERSATIONS);
    const expected = CONVERSATIONS.map((c) => ({
      prompt: null,
      chosen: c.chosen,
      rejected: c.rejected,
      scoreChosen: c.score_chosen,
      scoreRejected: c.score_rejected,
    }));
    assert.deepEqual(contents(r.jsonl), expected);
    assert.deepEqual(contents(r.json), expected);
    assert.deepEqual(contents(r.parquet), expected);
  });

  it("message-list records with a message-list prompt, and with a string prompt", async () => {
    const rows = [
      { prompt: [msg("user", "Hi")], chosen: [msg("assistant", "Hello")], rejected: [msg("assistant", "Bye")] },
      {
        prompt: [msg("user", "Name a fruit")],
        chosen: [msg("assistant", "Apple")],
        rejected: [msg("assistant", "Stone")],
      },
    ];
    const r = await readAllFormats("prompted", rows);
    for (const records of [r.jsonl, r.json, r.parquet]) {
      assert.deepEqual(
        contents(records),
        rows.map((x) => ({ ...x, scoreChosen: undefined, scoreRejected: undefined })),
      );
    }
    const stringPrompt = writeJsonl(join(root, "string-prompt.jsonl"), [
      { prompt: "Hi", chosen: [msg("assistant", "Hello")], rejected: [msg("assistant", "Bye")] },
    ]);
    const [rec] = await readPreferenceFile(stringPrompt);
    assert.equal(rec.prompt, "Hi");
    assert.deepEqual(rec.chosen, [msg("assistant", "Hello")]);
  });
});

describe("provenance and layout details", () => {
  it("each record knows its file and line, record or row", async () => {
    const r = await readAllFormats("sources", SCORED);
    assert.deepEqual(
      r.jsonl.map((x) => x.source),
      SCORED.map((_, i) => ({ file: r.files.jsonl, index: i + 1, unit: "line" })),
    );
    assert.deepEqual(
      r.json.map((x) => x.source),
      SCORED.map((_, i) => ({ file: r.files.json, index: i + 1, unit: "record" })),
    );
    assert.deepEqual(
      r.parquet.map((x) => x.source),
      SCORED.map((_, i) => ({ file: r.files.parquet, index: i + 1, unit: "row" })),
    );
  });

  it("JSON Lines skip blank lines (and CRLF endings) but keep the file's line numbers", async () => {
    const file = join(root, "gaps.jsonl");
    writeFileSync(file, `\r\n${JSON.stringify(SCORED[0])}\r\n\r\n\r\n${JSON.stringify(SCORED[1])}\r\n`);
    const records = await readPreferenceFile(file);
    assert.deepEqual(
      records.map((x) => x.source.index),
      [2, 5],
    );
    assert.equal(records[1].chosen, SCORED[1].chosen);
  });

  it("a .json file holding JSON Lines is read as JSON Lines", async () => {
    const file = join(root, "lines.json");
    writeFileSync(file, SCORED.map((s) => JSON.stringify(s)).join("\n"));
    const records = await readPreferenceFile(file);
    assert.deepEqual(
      records.map((x) => x.source.unit),
      ["line", "line", "line"],
    );
    assert.deepEqual(
      contents(records).map((x) => x.prompt),
      SCORED.map((s) => s.prompt),
    );
  });

  it("integer (INT64) score columns in Parquet come back as plain numbers", async () => {
    const file = join(root, "ints.parquet");
    parquetWriteFile({
      filename: file,
      columnData: [
        { name: "prompt", data: ["a", "b"], type: "STRING" },
        { name: "chosen", data: [" yes", " ok"], type: "STRING" },
        { name: "rejected", data: [" no", " nope"], type: "STRING" },
        { name: "score_chosen", data: [9n, 8n], type: "INT64" },
        { name: "score_rejected", data: [1n, 2n], type: "INT64" },
      ],
    });
    const records = await readPreferenceFile(file);
    assert.deepEqual(
      records.map((x) => [x.scoreChosen, x.scoreRejected]),
      [
        [9, 1],
        [8, 2],
      ],
    );
    assert.equal(typeof records[0].scoreChosen, "number");
  });

  it("extra columns are ignored; readRows hands back raw rows unvalidated", async () => {
    const rows = SCORED.map((s, i) => ({ ...s, id: `row-${i}`, source_model: "m" }));
    const file = writeJsonl(join(root, "extra.jsonl"), rows);
    assert.equal((await readPreferenceFile(file)).length, 3);
    const raw = await readRows(file);
    assert.deepEqual(
      raw.map((r) => r.row),
      rows,
    );
  });
});

describe("files that never end", () => {
  it("a .jsonl or .json that is a device (a link to /dev/zero or /dev/urandom) is refused at once, naming it", async () => {
    for (const [name, device] of [
      ["zero.jsonl", "/dev/zero"],
      ["random.json", "/dev/urandom"],
      ["random.jsonl", "/dev/urandom"],
    ]) {
      const link = join(root, name);
      symlinkSync(device, link);
      const started = Date.now();
      await assert.rejects(
        readPreferenceFile(link),
        (e: unknown) => e instanceof DataError && e.message.includes(`${link}: is a character device, not a data file`),
      );
      assert.throws(
        () => readPromptFile(link),
        (e: unknown) => e instanceof DataError && e.message.includes(link),
      );
      assert.ok(Date.now() - started < 2000, `${name}: took ${Date.now() - started} ms`);
    }
  });

  it("a pipe whose line passes the bound stops there: its end may never come", async () => {
    const fifo = join(root, "endless.jsonl");
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
    const writer = spawn("sh", ["-c", `exec cat /dev/zero > '${fifo}'`], { stdio: "ignore" });
    try {
      const started = Date.now();
      await assert.rejects(
        readPreferenceFile(fifo, { maxLineBytes: 2 ** 20 }),
        (e: unknown) =>
          e instanceof DataError &&
          e.message.includes(
            `${fifo}:1: the line passes the limit of 1 MiB for one line, and the file is not a regular file`,
          ),
      );
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    } finally {
      writer.kill();
    }
  });

  it("a pipe holding records is read as a file is", async () => {
    const fifo = join(root, "piped.jsonl");
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
    const rows = [
      { prompt: "p", chosen: "a", rejected: "b" },
      { prompt: "q", chosen: "c", rejected: "d" },
    ];
    const writer = spawn("sh", [
      "-c",
      `printf '%s\\n' '${JSON.stringify(rows[0])}' '${JSON.stringify(rows[1])}' > '${fifo}'`,
    ]);
    const records = await readPreferenceFile(fifo);
    assert.deepEqual(
      records.map((r) => r.chosen),
      ["a", "c"],
    );
    writer.kill();
  });
});

describe("a .json file that is one object, not records", () => {
  it("is named as such, on one line or pretty-printed, with the key that holds an array", async () => {
    const records = [{ prompt: "p", chosen: "a", rejected: "b" }];
    for (const [name, text] of [
      ["one-line.json", JSON.stringify({ data: records, version: 1 })],
      ["pretty.json", JSON.stringify({ data: records, version: 1 }, null, 2)],
    ]) {
      const file = join(root, name);
      writeFileSync(file, text + "\n");
      await assert.rejects(
        readPreferenceFile(file),
        (e: unknown) =>
          e instanceof DataError &&
          e.message ===
            `${file}: expected an array of records (or JSON Lines, one record per line); its top level is an object with keys 'data', 'version' (are the records in 'data'?)`,
      );
    }
    // One record on one line is still JSON Lines.
    const one = join(root, "one-record.json");
    writeFileSync(one, JSON.stringify(records[0]) + "\n");
    assert.equal((await readPreferenceFile(one)).length, 1);
  });
});

describe("a file of many bad lines", () => {
  it("keeps the first 1000 problems in file order and counts them all", async () => {
    const root = tempDir("omni-dpo-many-");
    // 200k lines alternating: not JSON, then a record missing 'rejected'.
    const lines = Array.from({ length: 200_000 }, (_, i) =>
      i % 2 === 0 ? "not json" : JSON.stringify({ prompt: "p", chosen: "a" }),
    );
    const file = join(root, "many.jsonl");
    writeFileSync(file, lines.join("\n") + "\n");
    await assert.rejects(readPreferenceFile(file), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.equal(e.total, 200_000);
      assert.equal(e.problems.length, KEPT_PROBLEMS);
      assert.match(e.problems[0], /many\.jsonl:1: not valid JSON/);
      assert.match(e.problems[1], /many\.jsonl:2: field 'rejected'/);
      assert.match(e.problems[KEPT_PROBLEMS - 1], new RegExp(`many\\.jsonl:${KEPT_PROBLEMS}: `));
      assert.match(e.message, /^first 20 of 200000 problems in the data:/);
      return true;
    });
    const prompts = join(root, "prompts.jsonl");
    writeFileSync(prompts, Array.from({ length: 50_000 }, () => "{bad").join("\n") + "\n");
    for (const read of [readPromptRows, readPromptFile]) {
      assert.throws(
        () => read(prompts),
        (e: unknown) => e instanceof DataError && e.total === 50_000 && e.problems.length === KEPT_PROBLEMS,
      );
    }
    rmSync(root, { recursive: true, force: true });
  });
});

describe("DataError", () => {
  it("says when the problems it lists are the first of more", () => {
    const problems = Array.from({ length: 40 }, (_, i) => `f.jsonl:${i + 1}: field 'chosen': missing`);
    assert.match(new DataError(problems).message, /^first 20 of 40 problems in the data:\n {2}f\.jsonl:1: /);
    assert.match(new DataError(problems.slice(0, 20), 40).message, /^first 20 of 40 problems in the data:/);
    assert.equal(new DataError(problems.slice(0, 20)).message.split("\n")[0], "20 problems in the data:");
    assert.equal(new DataError(problems.slice(0, 20)).message.split("\n").length, 21);
    assert.equal(new DataError(problems.slice(0, 1)).message, "f.jsonl:1: field 'chosen': missing");
  });
});

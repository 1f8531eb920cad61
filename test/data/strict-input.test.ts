// Strict input for every data reader (JSON Lines, JSON arrays, Parquet, prompt files): invalid
// UTF-8 is an error naming the file, the line (or row and field) and the byte, never text with
// replacement characters; a BOM at the start of a file is a BOM; a line (one record) above
// 64 MiB and a JSON array file above 256 MiB are errors naming the file (and line) without
// being read into memory. Every file here is written by the test, byte by byte where it matters.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, closeSync, ftruncateSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { parquetWriteFile } from "hyparquet-writer";
import { MAX_LINE_BYTES, readLines } from "../../src/data/lines.js";
import { MAX_JSON_ARRAY_BYTES, readPreferenceFile, readPromptFile, readRows } from "../../src/data/readers.js";
import { writePreferenceParquet } from "../helpers/parquet.js";
import { tempDir } from "../helpers/toy.js";
import { problemsOf } from "./problems.js";

let root: string;
before(() => {
  root = tempDir("omni-dpo-strict-");
});
after(() => rmSync(root, { recursive: true, force: true }));

const GOOD = { prompt: "What is 7 times 6?", chosen: " 42.", rejected: " 36." };
const line = (row: unknown = GOOD) => Buffer.from(JSON.stringify(row) + "\n");
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** "é" cut after its first byte: a lead byte followed by an ASCII quote. */
const TRUNCATED_E = Buffer.from([0xc3]);

function write(name: string, ...parts: (Buffer | string)[]): string {
  const file = join(root, name);
  writeFileSync(file, Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : p))));
  return file;
}

describe("invalid UTF-8 is an error naming file, line and byte", () => {
  it("JSON Lines: the bad line is named with its byte offset, beside the file's other problems", async () => {
    // Line 2's chosen value holds 0xC3 then '"': not UTF-8. Line 4 misses 'rejected'.
    const bad = Buffer.concat([
      Buffer.from('{"prompt": "Q", "chosen": " caf'),
      TRUNCATED_E,
      Buffer.from('", "rejected": " no"}\n'),
    ]);
    const file = write("bad.jsonl", line(), bad, line(), line({ prompt: "Q", chosen: " yes" }));
    const offset = line().length + bad.indexOf(0xc3);
    const problems = await problemsOf(() => readPreferenceFile(file));
    assert.deepEqual(problems, [
      `${file}:2: invalid UTF-8 at byte ${offset} of the file (byte ${bad.indexOf(0xc3)} of the line)`,
      `${file}:4: field 'rejected': missing`,
    ]);
  });

  it("every kind of invalid sequence: stray continuation, overlong, surrogate, above U+10FFFF, truncated at the end", async () => {
    const cases: [string, number[]][] = [
      ["continuation byte alone", [0x80]],
      ["overlong '/'", [0xc0, 0xaf]],
      ["overlong 3-byte", [0xe0, 0x80, 0xaf]],
      ["UTF-16 surrogate", [0xed, 0xa0, 0x80]],
      ["above U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
      ["0xFF", [0xff]],
    ];
    for (const [what, bytes] of cases) {
      const prefix = Buffer.from('{"prompt": "ok ✓", "chosen": " ');
      const file = write("kinds.jsonl", line(), prefix, Buffer.from(bytes), '", "rejected": " no"}\n');
      assert.deepEqual(
        await problemsOf(() => readPreferenceFile(file)),
        [
          `${file}:2: invalid UTF-8 at byte ${line().length + prefix.length} of the file (byte ${prefix.length} of the line)`,
        ],
        what,
      );
    }
    // A file that ends inside a multi-byte character, without a final newline.
    const cut = write("cut.jsonl", line(), Buffer.from("🤖").subarray(0, 3));
    assert.deepEqual(await problemsOf(() => readPreferenceFile(cut)), [
      `${cut}:2: invalid UTF-8 at byte ${line().length} of the file (byte 0 of the line)`,
    ]);
  });

  it("a JSON array: the line and byte of the file", async () => {
    const head = Buffer.from(`[\n  ${JSON.stringify(GOOD)},\n  {"prompt": "Q", "chosen": " na`);
    const file = write("bad.json", head, Buffer.from([0xe2, 0x82]), '", "rejected": " no"}\n]\n');
    assert.deepEqual(await problemsOf(() => readPreferenceFile(file)), [
      `${file}:3: invalid UTF-8 at byte ${head.length} of the file`,
    ]);
  });

  it("a prompt file (plain lines and JSON lines)", async () => {
    const file = write(
      "prompts.txt",
      "What is 2+2?\n",
      Buffer.from("Caf"),
      TRUNCATED_E,
      "\n",
      '{"prompt": "fine"}\n',
      '{"prompt": "',
      Buffer.from([0xff]),
      '"}\n',
    );
    const first = "What is 2+2?\n".length;
    assert.deepEqual(await problemsOf(() => readPromptFile(file)), [
      `${file}:2: invalid UTF-8 at byte ${first + 3} of the file (byte 3 of the line)`,
      `${file}:4: invalid UTF-8 at byte ${first + 5 + '{"prompt": "fine"}\n'.length + 12} of the file (byte 12 of the line)`,
    ]);
  });

  it("Parquet: the row and the field, in plain and dictionary-encoded columns and inside message lists", async () => {
    const bad = new Uint8Array([0x61, 0xe2, 0x82]); // "a" then a 3-byte sequence cut short
    const ok = new TextEncoder().encode(" fine");
    const plainFile = join(root, "bad.parquet");
    // Eight rows with two distinct values per column: the writer dictionary-encodes them.
    parquetWriteFile({
      filename: plainFile,
      columnData: [
        { name: "prompt", data: new Array(8).fill("Q"), type: "STRING" },
        { name: "chosen", data: Array.from({ length: 8 }, (_, i) => (i === 2 || i === 5 ? bad : ok)), type: "STRING" },
        { name: "rejected", data: new Array(8).fill(" no"), type: "STRING" },
      ],
    });
    assert.deepEqual(await problemsOf(() => readPreferenceFile(plainFile)), [
      `${plainFile} row 3: field 'chosen': invalid UTF-8 at byte 1 of the value`,
      `${plainFile} row 6: field 'chosen': invalid UTF-8 at byte 1 of the value`,
    ]);
    const messages = writePreferenceParquet(join(root, "bad-messages.parquet"), [
      {
        chosen: [
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Hello" },
        ],
        rejected: [
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Go" },
        ],
      },
      {
        chosen: [
          { role: "user", content: "Hi" },
          { role: "assistant", content: bad },
        ],
        rejected: [
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Go" },
        ],
      },
    ]);
    assert.deepEqual(await problemsOf(() => readPreferenceFile(messages)), [
      `${messages} row 2: field 'chosen[1].content': invalid UTF-8 at byte 1 of the value`,
    ]);
  });

  it("valid multi-byte text survives the chunked reading, wherever the chunks fall", async () => {
    // A 3 MiB line of 4-byte characters: the reader's 1 MiB chunks end inside characters.
    const emoji = "🤖é中".repeat(350_000);
    const file = write("wide.jsonl", line({ ...GOOD, chosen: emoji }), "\n", line({ ...GOOD, prompt: "after" }));
    const records = await readPreferenceFile(file);
    assert.equal(records[0].chosen, emoji);
    assert.deepEqual(
      records.map((r) => r.source.index),
      [1, 3],
    );
    assert.equal(records[1].prompt, "after");
  });
});

describe("a BOM at the start of a file is a BOM", () => {
  it("JSON Lines, a .json of JSON Lines and a JSON array: the first key is 'prompt', not '\\uFEFFprompt'", async () => {
    for (const [name, body] of [
      ["bom.jsonl", line()],
      ["bom-lines.json", line()],
      ["bom-array.json", Buffer.from(` [${JSON.stringify(GOOD)}]`)],
    ] as const) {
      const file = write(name, BOM, body);
      const [record] = await readPreferenceFile(file);
      assert.equal(record.prompt, GOOD.prompt, name);
      assert.deepEqual(Object.keys((await readRows(file))[0].row as object), ["prompt", "chosen", "rejected"], name);
    }
  });

  it("a prompt file: the first prompt does not start with U+FEFF", () => {
    assert.deepEqual(readPromptFile(write("bom-prompts.txt", BOM, "What is 2+2?\nWhat is 3+3?\n")), [
      "What is 2+2?",
      "What is 3+3?",
    ]);
    assert.deepEqual(readPromptFile(write("bom-prompts.jsonl", BOM, '{"prompt": "What is 2+2?"}\n')), ["What is 2+2?"]);
  });

  it("U+FEFF anywhere else is text: kept inside values, and a JSON error at the start of a later line", async () => {
    const inside = write("feff-inside.jsonl", BOM, line({ ...GOOD, chosen: " a\uFEFFb" }));
    assert.equal((await readPreferenceFile(inside))[0].chosen, " a\uFEFFb");
    const later = write("feff-later.jsonl", line(), BOM, line());
    const problems = await problemsOf(() => readPreferenceFile(later));
    assert.equal(problems.length, 1);
    assert.ok(problems[0].startsWith(`${later}:2: not valid JSON`), problems[0]);
  });
});

describe("size bounds: named, not read into memory", () => {
  /** A file whose line 2 is `bytes` zero bytes (a sparse file: nothing is written for them). */
  function withHugeLine(name: string, bytes: number, first: Buffer, last: Buffer): string {
    const file = join(root, name);
    const fd = openSync(file, "w");
    writeSync(fd, first);
    ftruncateSync(fd, first.length + bytes);
    closeSync(fd);
    appendFileSync(file, Buffer.concat([Buffer.from("\n"), last]));
    return file;
  }

  it("a JSON line above 64 MiB is an error naming file and line; the lines around it are still checked", async () => {
    const file = withHugeLine("huge.jsonl", MAX_LINE_BYTES + 1, line(), line({ prompt: "Q" }));
    assert.deepEqual(await problemsOf(() => readPreferenceFile(file)), [
      `${file}:2: the line holds ${MAX_LINE_BYTES + 1} bytes, above the limit of 64 MiB for one line`,
      `${file}:3: field 'chosen': missing`,
      `${file}:3: field 'rejected': missing`,
    ]);
  });

  it("a prompt line above 64 MiB too", async () => {
    const file = withHugeLine(
      "huge-prompts.txt",
      MAX_LINE_BYTES + 5 * 2 ** 20,
      Buffer.from("fine\n"),
      Buffer.from("fine too\n"),
    );
    assert.deepEqual(await problemsOf(() => readPromptFile(file)), [
      `${file}:2: the line holds ${MAX_LINE_BYTES + 5 * 2 ** 20} bytes, above the limit of 64 MiB for one line`,
    ]);
  });

  it("the bound is exact and can be set: a line of exactly maxLineBytes is read, one byte more is not", async () => {
    const row = line();
    const bytes = row.length - 1; // without its newline
    const file = write("exact.jsonl", row, row);
    assert.equal((await readPreferenceFile(file, { maxLineBytes: bytes })).length, 2);
    const problems = await problemsOf(() => readPreferenceFile(file, { maxLineBytes: bytes - 1 }));
    assert.equal(problems.length, 2);
    assert.equal(
      problems[0],
      `${file}:1: the line holds ${bytes} bytes, above the limit of ${bytes - 1} bytes for one line`,
    );
  });

  it("a JSON array file above 256 MiB is an error that says to write JSON Lines, before anything is read", async () => {
    const file = join(root, "huge.json");
    const fd = openSync(file, "w");
    writeSync(fd, "[");
    ftruncateSync(fd, MAX_JSON_ARRAY_BYTES + 1);
    closeSync(fd);
    assert.deepEqual(await problemsOf(() => readPreferenceFile(file)), [
      `${file}: a JSON array file is parsed whole and may hold at most 256 MiB, this one holds ${MAX_JSON_ARRAY_BYTES + 1} bytes; ` +
        "write the records as JSON Lines (.jsonl, one per line), which are read line by line",
    ]);
  });

  it("readLines keeps the file's line numbers, CR before LF and a last line without a newline", () => {
    const file = write("lines.txt", BOM, "one\r\n\ntwo\nthree");
    assert.deepEqual(
      [...readLines(file)],
      [
        { number: 1, text: "one\r" },
        { number: 2, text: "" },
        { number: 3, text: "two" },
        { number: 4, text: "three" },
      ],
    );
    assert.deepEqual([...readLines(write("trailing.txt", "a\n"))], [{ number: 1, text: "a" }]);
    assert.deepEqual([...readLines(write("empty.txt", ""))], []);
  });
});

// Reading safetensors files that are not what they claim: each bad file is written byte by byte
// here (8-byte little-endian header length, JSON header, data section), and reading it must
// fail with an error that names the file and the tensor, rather than loading wrong bytes as
// weights. The checks are the reference implementation's: offsets inside the data section,
// begin <= end, byte counts that match dtype x shape, no overlaps, no gaps, no bytes left over,
// a header that fits in the file and is a JSON object with known dtypes and integer shapes.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { loadModel } from "../../src/models/auto.js";
import { loadSafetensors, readHeader } from "../../src/models/safetensors.js";

const root = mkdtempSync(join(tmpdir(), "omni-dpo-safetensors-"));
after(() => rmSync(root, { recursive: true, force: true }));
let files = 0;

/** Data bytes: float32 1, 2, 3, ... filling `bytes` (a multiple of 4). */
function floats(bytes: number): Buffer {
  return Buffer.from(Float32Array.from({ length: bytes / 4 }, (_, i) => i + 1).buffer);
}

/** Writes a safetensors file by hand: length field (`length`, default the header's), header text, data. */
function craft(header: unknown, data: Buffer, length?: bigint): string {
  const file = join(root, `${files++}.safetensors`);
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header), "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(length ?? BigInt(json.length));
  writeFileSync(file, Buffer.concat([len, json, data]));
  return file;
}

function message(fn: () => unknown): string {
  try {
    const out = fn();
    if (out instanceof Map) torch.dispose([...out.values()]);
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail("expected an error");
}

/** readHeader and loadSafetensors both reject `file`, naming it and every name in `names`, with `pattern`. */
function assertRejected(file: string, pattern: RegExp, ...names: string[]): void {
  for (const msg of [message(() => readHeader(file)), message(() => loadSafetensors(file))]) {
    assert.ok(msg.startsWith(`${file}: `), `the file is not named first: ${msg}`);
    for (const n of names) assert.ok(msg.includes(`tensor ${n}`), `tensor ${n} is not named: ${msg}`);
    assert.match(msg, pattern);
  }
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: "F32", shape, data_offsets: [begin, end] });

test("a valid hand-written file loads: tensors listed out of data order, an empty tensor, metadata, I64", () => {
  const ints = Buffer.from(BigInt64Array.from([7n, -3n]).buffer);
  const file = craft(
    {
      __metadata__: { format: "pt" },
      b: f32([2], 8, 16),
      a: f32([2], 0, 8),
      empty: f32([0, 3], 16, 16),
      n: { dtype: "I64", shape: [2], data_offsets: [16, 32] },
    },
    Buffer.concat([floats(16), ints]),
  );
  assert.deepEqual(readHeader(file).metadata, { format: "pt" });
  const t = loadSafetensors(file);
  assert.deepEqual(t.get("a")!.toArray(), [1, 2]);
  assert.deepEqual(t.get("b")!.toArray(), [3, 4]);
  assert.deepEqual(t.get("empty")!.shape, [0, 3]);
  assert.equal(t.get("n")!.dtype, "int64");
  assert.deepEqual(t.get("n")!.toArray(), [7, -3]);
  torch.dispose([...t.values()]);
});

test("negative data_offsets are an error naming the tensor (they used to read header bytes as weights)", () => {
  const file = craft({ a: f32([1], -4, 0), b: f32([2], 0, 8) }, floats(8));
  assertRejected(file, /data_offsets \[-4, 0\] begin before the data section/, "a");
});

test("data_offsets that begin after they end are an error naming the tensor", () => {
  const file = craft({ a: f32([1], 8, 4), b: f32([2], 0, 8) }, floats(8));
  assertRejected(file, /data_offsets \[8, 4\] begin after they end/, "a");
});

test("data_offsets past the end of the data section are an error naming the tensor and the section's size", () => {
  const file = craft({ a: f32([1], 0, 4), b: f32([2], 4, 12) }, floats(8));
  assertRejected(file, /data_offsets \[4, 12\] run past the end of the data section \(8 bytes\)/, "b");
});

test("a byte count that does not match dtype x shape is an error naming the tensor", () => {
  const file = craft({ a: f32([3], 0, 8) }, floats(8));
  assertRejected(file, /has 8 bytes, its dtype F32 and shape \[3\] need 12/, "a");
});

test("a tensor overlapping another is an error naming both (it used to load the shared bytes twice)", () => {
  assertRejected(
    craft({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, floats(12)),
    /tensor b \(bytes 4\.\.12\) overlaps tensor a \(bytes 0\.\.8\)/,
    "a",
    "b",
  );
  // the same bytes under two names
  assertRejected(craft({ w: f32([2], 0, 8), alias: f32([2], 0, 8) }, floats(8)), /overlaps/, "w", "alias");
});

test("bytes of the data section that belong to no tensor are an error: a gap, leading bytes, trailing bytes", () => {
  assertRejected(
    craft({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, floats(12)),
    /bytes 4\.\.8 of the data section belong to no tensor \(a gap before tensor b\)/,
    "b",
  );
  assertRejected(craft({ a: f32([1], 4, 8) }, floats(8)), /bytes 0\.\.4 of the data section belong to no tensor/, "a");
  assertRejected(
    craft({ a: f32([1], 0, 4) }, floats(8)),
    /bytes 4\.\.8 of the data section belong to no tensor \(after tensor a\)/,
    "a",
  );
});

test("a header length beyond the file, or absurdly large, is an error naming the file", () => {
  const header = JSON.stringify({ a: f32([1], 0, 4) });
  const long = craft(header, floats(4), 10_000n);
  assertRejected(long, new RegExp(`header length 10000 exceeds the ${header.length + 4} bytes after the length field`));
  assertRejected(craft(header, floats(4), 2n ** 63n), /invalid safetensors header length 9223372036854775808/);
  assertRejected(craft("", Buffer.alloc(0), 0n), /invalid safetensors header length 0/);
  const short = join(root, "short.safetensors");
  writeFileSync(short, Buffer.from([1, 2, 3]));
  assertRejected(short, /too short to be a safetensors file \(3 bytes\)/);
});

test("a header that is not a JSON object is an error naming the file", () => {
  assertRejected(craft("{ not json", Buffer.alloc(0)), /header is not valid JSON/);
  for (const text of ["[1, 2]", "null", '"a"', "5"])
    assertRejected(craft(text, Buffer.alloc(0)), /header must be a JSON object/);
  for (const entry of [5, null, [1]])
    assertRejected(craft({ w: entry }, Buffer.alloc(0)), /its header entry must be an object/, "w");
  assertRejected(
    craft({ __metadata__: { format: 1 }, a: f32([1], 0, 4) }, floats(4)),
    /__metadata__ must be an object of strings/,
  );
});

test("an unknown dtype is an error naming the tensor and listing the supported dtypes", () => {
  for (const dtype of ["F8_E4M3", "f32", 4]) {
    const file = craft({ q: { dtype, shape: [4], data_offsets: [0, 4] } }, Buffer.alloc(4));
    assertRejected(file, /which is not supported \(supported: F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL\)/, "q");
  }
});

test("shapes must be lists of non-negative integers, data_offsets two integers", () => {
  for (const shape of [[-2, -2], [1.5, 2], "4", [2, "2"], null]) {
    assertRejected(
      craft({ s: { dtype: "F32", shape, data_offsets: [0, 16] } }, floats(16)),
      /shape must be a list of non-negative integers/,
      "s",
    );
  }
  for (const offsets of [[0], [0, 4, 8], ["0", "4"], [0, 4.5], null]) {
    assertRejected(
      craft({ o: { dtype: "F32", shape: [1], data_offsets: offsets } }, floats(4)),
      /data_offsets must be two integers \[begin, end\]/,
      "o",
    );
  }
});

test("loadModel reports a bad weight file by its path", () => {
  const dir = join(root, "model");
  mkdirSync(dir);
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({
      architectures: ["GPT2LMHeadModel"],
      vocab_size: 8,
      n_positions: 8,
      n_embd: 4,
      n_layer: 1,
      n_head: 1,
    }),
  );
  const file = join(dir, "model.safetensors");
  copyFileSync(
    craft({ "transformer.wte.weight": f32([2], 0, 8), "transformer.wpe.weight": f32([2], 4, 12) }, floats(12)),
    file,
  );
  const msg = message(() => loadModel(dir));
  assert.ok(msg.startsWith(`${file}: `), msg);
  assert.match(msg, /tensor transformer\.wpe\.weight .* overlaps tensor transformer\.wte\.weight/);
});

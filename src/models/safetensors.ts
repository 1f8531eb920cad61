// The safetensors format (Hugging Face's weight files): an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}}, then the raw little-endian bytes.
// Single files and sharded checkpoints (model.safetensors.index.json) both read and write here.
import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  writeSync,
  mkdirSync,
  unlinkSync,
} from "node:fs";
import { join } from "node:path";
import { readTextFile } from "../util/utf8.js";
import * as torch from "../torch/index.js";
import { writeJsonAtomic } from "../util/files.js";

const TO_DTYPE: Record<string, torch.DType> = {
  F32: "float32",
  F64: "float64",
  F16: "float16",
  BF16: "bfloat16",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
};
const FROM_DTYPE = Object.fromEntries(Object.entries(TO_DTYPE).map(([k, v]) => [v, k])) as Record<torch.DType, string>;
const ITEM: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export interface TensorInfo {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}
export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  dataStart: number;
}

// The reference implementation's cap: a larger header is taken as a corrupt length.
const MAX_HEADER_BYTES = 100_000_000;

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** One tensor's header entry, checked on its own: dtype, shape, offsets and their byte count. */
function tensorInfo(file: string, name: string, value: unknown, dataBytes: number): TensorInfo {
  const where = `${file}: tensor ${name}`;
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new Error(
      `${where}: its header entry must be an object {dtype, shape, data_offsets}, got ${JSON.stringify(value)}`,
    );
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== "string" || !(dtype in TO_DTYPE)) {
    throw new Error(
      `${where} has dtype ${JSON.stringify(dtype)}, which is not supported (supported: ${Object.keys(TO_DTYPE).join(", ")})`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isCount))
    throw new Error(`${where}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => typeof o === "number" && Number.isSafeInteger(o))
  ) {
    throw new Error(`${where}: data_offsets must be two integers [begin, end], got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin < 0) throw new Error(`${where}: data_offsets [${begin}, ${end}] begin before the data section (begin < 0)`);
  if (begin > end) throw new Error(`${where}: data_offsets [${begin}, ${end}] begin after they end`);
  if (end > dataBytes)
    throw new Error(
      `${where}: data_offsets [${begin}, ${end}] run past the end of the data section (${dataBytes} bytes)`,
    );
  const expected = shape.reduce((a: number, b: number) => a * b, 1) * ITEM[dtype];
  if (end - begin !== expected)
    throw new Error(`${where} has ${end - begin} bytes, its dtype ${dtype} and shape [${shape}] need ${expected}`);
  return { dtype, shape, data_offsets: [begin, end] };
}

/**
 * Reads and validates a file's header; errors name the file and the tensor. As the reference
 * implementation requires, the header fits in the file, is a JSON object, every tensor's bytes
 * lie in the data section and match its dtype and shape, and the tensors cover the data section
 * exactly: no two share a byte and none is left over, so no bytes can load as two tensors.
 */
export function readHeader(file: string): SafetensorsHeader {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const lenBuf = Buffer.alloc(8);
    if (size < 8 || readSync(fd, lenBuf, 0, 8, 0) !== 8)
      throw new Error(`${file}: too short to be a safetensors file (${size} bytes)`);
    const len = lenBuf.readBigUInt64LE(0);
    if (len === 0n || len > BigInt(MAX_HEADER_BYTES))
      throw new Error(`${file}: invalid safetensors header length ${len}`);
    if (len > BigInt(size - 8))
      throw new Error(`${file}: safetensors header length ${len} exceeds the ${size - 8} bytes after the length field`);
    const n = Number(len);
    const json = Buffer.alloc(n);
    if (readSync(fd, json, 0, n, 8) !== n) throw new Error(`${file}: truncated safetensors header`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(json.toString("utf8"));
    } catch (e) {
      throw new Error(`${file}: safetensors header is not valid JSON (${(e as Error).message})`, { cause: e });
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new Error(
        `${file}: safetensors header must be a JSON object {name: {dtype, shape, data_offsets}}, got ${Array.isArray(parsed) ? "a list" : JSON.stringify(parsed)}`,
      );
    }
    const dataBytes = size - 8 - n;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(parsed)) {
      if (name === "__metadata__") {
        if (
          typeof value !== "object" ||
          value === null ||
          Array.isArray(value) ||
          !Object.values(value).every((v) => typeof v === "string")
        ) {
          throw new Error(`${file}: __metadata__ must be an object of strings, got ${JSON.stringify(value)}`);
        }
        metadata = value as Record<string, string>;
        continue;
      }
      tensors.set(name, tensorInfo(file, name, value, dataBytes));
    }
    // In data order (by begin, then end), each tensor must start where the previous one ended.
    const ordered = [...tensors].sort(
      ([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1],
    );
    let covered = 0;
    let previous: [string, TensorInfo] | null = null;
    for (const [name, info] of ordered) {
      const [begin, end] = info.data_offsets;
      if (begin < covered) {
        const [
          other,
          {
            data_offsets: [b0, b1],
          },
        ] = previous!;
        throw new Error(
          `${file}: tensor ${name} (bytes ${begin}..${end}) overlaps tensor ${other} (bytes ${b0}..${b1})`,
        );
      }
      if (begin > covered)
        throw new Error(
          `${file}: bytes ${covered}..${begin} of the data section belong to no tensor (a gap before tensor ${name})`,
        );
      covered = end;
      previous = [name, info];
    }
    if (covered !== dataBytes) {
      throw new Error(
        `${file}: bytes ${covered}..${dataBytes} of the data section belong to no tensor (after ${previous ? `tensor ${previous[0]}` : "the header"})`,
      );
    }
    return { tensors, metadata, dataStart: 8 + n };
  } finally {
    closeSync(fd);
  }
}

/**
 * Loads tensors from one safetensors file. Each tensor's bytes are read into the tensor's own
 * memory, without a further copy; `dtype` casts floating-point tensors (e.g. BF16 -> float32).
 */
export function loadSafetensors(
  file: string,
  options: { dtype?: torch.DType; names?: Set<string> } = {},
): Map<string, torch.Tensor> {
  const header = readHeader(file);
  const out = new Map<string, torch.Tensor>();
  const fd = openSync(file, "r");
  try {
    for (const [name, info] of header.tensors) {
      if (options.names && !options.names.has(name)) continue;
      const [begin, end] = info.data_offsets;
      const stored = TO_DTYPE[info.dtype];
      // Read straight into the tensor's own memory: no copy, and nothing JavaScript can free.
      let t = torch.empty(info.shape, { dtype: stored });
      if (torch.readInto(t, fd, header.dataStart + begin) !== end - begin) {
        t.dispose();
        throw new Error(`${file}: tensor ${name} is truncated`);
      }
      const target = options.dtype;
      if (target && target !== stored && isFloat(stored)) {
        const cast = t.to(target);
        t.dispose();
        t = cast;
      }
      out.set(name, t);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function isFloat(d: torch.DType): boolean {
  return d === "float32" || d === "float64" || d === "float16" || d === "bfloat16";
}

/**
 * Writes tensors to one safetensors file, through a temporary file renamed into place, so an
 * interrupted write never leaves a half-written file under the final name.
 */
export function saveSafetensors(
  file: string,
  tensors: [string, torch.Tensor][],
  metadata: Record<string, string> = { format: "pt" },
): void {
  const sorted = [...tensors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of sorted) {
    const bytes = t.numel() * ITEM[FROM_DTYPE[t.dtype]];
    header[name] = { dtype: FROM_DTYPE[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), "utf8");
  const padded = Math.ceil(json.length / 8) * 8; // keeps the data 8-byte aligned
  json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, json);
    for (const [, t] of sorted) {
      const data = t.data();
      writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, file);
}

export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";

/** Loads every tensor of a checkpoint directory: model.safetensors, or the shards its index names. */
export function loadCheckpoint(dir: string, options: { dtype?: torch.DType } = {}): Map<string, torch.Tensor> {
  if (existsSync(join(dir, SINGLE_FILE))) return loadSafetensors(join(dir, SINGLE_FILE), options);
  const indexPath = join(dir, INDEX_FILE);
  if (existsSync(indexPath)) {
    const text = readTextFile(indexPath);
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(text);
    } catch (e) {
      throw new Error(`${indexPath}: not valid JSON (${(e as Error).message})`, { cause: e });
    }
    if (!index.weight_map) throw new Error(`${indexPath}: missing field weight_map`);
    const byFile = new Map<string, Set<string>>();
    for (const [name, file] of Object.entries(index.weight_map)) {
      if (!byFile.has(file)) byFile.set(file, new Set());
      byFile.get(file)!.add(name);
    }
    const out = new Map<string, torch.Tensor>();
    for (const [file, names] of byFile) {
      const path = join(dir, file);
      if (!existsSync(path)) throw new Error(`${indexPath}: shard ${file} is missing`);
      for (const [n, t] of loadSafetensors(path, { ...options, names })) out.set(n, t);
    }
    return out;
  }
  const other = ["pytorch_model.bin", "model.bin", "tf_model.h5"].filter((f) => existsSync(join(dir, f)));
  throw new Error(
    `${dir}: no ${SINGLE_FILE} or ${INDEX_FILE}` +
      (other.length
        ? ` (found ${other.join(", ")}; convert it to safetensors with transformers' save_pretrained(safe_serialization=True))`
        : ""),
  );
}

/**
 * Saves tensors as a checkpoint directory in Hugging Face's layout: one model.safetensors, or
 * shards of at most `maxShardBytes` named model-0000i-of-0000n.safetensors plus an index.
 */
export function saveCheckpoint(
  dir: string,
  tensors: [string, torch.Tensor][],
  options: { maxShardBytes?: number } = {},
): string[] {
  mkdirSync(dir, { recursive: true });
  // Shards of an earlier save would linger beside the new files; remove them first.
  for (const f of readdirSync(dir)) if (/^model-\d{5}-of-\d{5}\.safetensors$/.test(f)) unlinkSync(join(dir, f));
  const limit = options.maxShardBytes ?? 5 * 1024 ** 3;
  const shards: [string, torch.Tensor][][] = [[]];
  let size = 0;
  let total = 0;
  for (const entry of tensors) {
    const bytes = entry[1].numel() * ITEM[FROM_DTYPE[entry[1].dtype]];
    if (size > 0 && size + bytes > limit) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(entry);
    size += bytes;
    total += bytes;
  }
  if (shards.length === 1) {
    saveSafetensors(join(dir, SINGLE_FILE), shards[0]);
    for (const stale of [INDEX_FILE]) if (existsSync(join(dir, stale))) unlinkSync(join(dir, stale));
    return [SINGLE_FILE];
  }
  const n = shards.length;
  const names = shards.map(
    (_, i) => `model-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`,
  );
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => {
    saveSafetensors(join(dir, names[i]), shard);
    for (const [name] of shard) weightMap[name] = names[i];
  });
  writeJsonAtomic(join(dir, INDEX_FILE), { metadata: { total_size: total }, weight_map: weightMap });
  if (existsSync(join(dir, SINGLE_FILE))) unlinkSync(join(dir, SINGLE_FILE));
  return [...names, INDEX_FILE];
}

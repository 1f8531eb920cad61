// TensorBoard event files, written as TensorFlow's tfevents format defines them, so TensorBoard
// (and tensorboard.backend.event_processing) reads them: a sequence of records, each
//   uint64 length (little-endian) | uint32 masked CRC-32C of the length | data | uint32 masked CRC-32C of the data,
// whose data is a serialized tensorflow.Event protobuf: wall_time (field 1, double), step
// (field 2, int64), file_version (field 3, string, "brain.Event:2" in the first event) or
// summary (field 5: a Summary of Values, each a tag (field 1) and simple_value (field 2,
// float)), as PyTorch's SummaryWriter.add_scalar writes scalars. Rows are logged as the HF
// trainer's TensorBoardCallback does: eval_x under eval/x, every other number under train/x, at
// the global step.
import { appendFileSync, mkdirSync, openSync, closeSync, fsyncSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { writingTo } from "../util/files.js";

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masking, so a CRC of data holding CRCs stays well distributed. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord framing `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(BigInt(data.length), 0);
  header.writeUInt32LE(maskedCrc32c(header.subarray(0, 8)), 8);
  const footer = Buffer.alloc(4);
  footer.writeUInt32LE(maskedCrc32c(data), 0);
  return Buffer.concat([header, data, footer]);
}

// --- protobuf encoding (the few wire types the Event message needs)
function varint(value: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const key = (field: number, wire: number) => varint(BigInt((field << 3) | wire));
function lengthDelimited(field: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([...key(field, 2), ...varint(BigInt(bytes.length))]), bytes]);
}
function double(field: number, v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return Buffer.concat([Buffer.from(key(field, 1)), b]);
}
function float(field: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v);
  return Buffer.concat([Buffer.from(key(field, 5)), b]);
}

/** A serialized Event: wall_time, step, and a file_version or a Summary of scalar values. */
export function eventBytes(
  wallTime: number,
  step: number,
  content: { fileVersion: string } | { scalars: [string, number][] },
): Buffer {
  const parts = [double(1, wallTime), Buffer.from([...key(2, 0), ...varint(BigInt(step))])];
  if ("fileVersion" in content) parts.push(lengthDelimited(3, Buffer.from(content.fileVersion, "utf8")));
  else {
    const values = content.scalars.map(([tag, v]) =>
      lengthDelimited(1, Buffer.concat([lengthDelimited(1, Buffer.from(tag, "utf8")), float(2, v)])),
    );
    parts.push(lengthDelimited(5, Buffer.concat(values)));
  }
  return Buffer.concat(parts);
}

/** The tag the HF trainer's TensorBoardCallback gives a logged key (transformers' rewrite_logs). */
export function tensorboardTag(name: string): string {
  if (name.startsWith("eval_")) return `eval/${name.slice("eval_".length)}`;
  if (name.startsWith("test_")) return `test/${name.slice("test_".length)}`;
  return `train/${name}`;
}

/** transformers' default logging_dir under output_dir: runs/<Mon>DD_HH-MM-SS_<host>. */
export function defaultLoggingDir(outputDir: string, now = new Date()): string {
  const month = now.toLocaleString("en-US", { month: "short" });
  const p = (n: number) => String(n).padStart(2, "0");
  return join(
    outputDir,
    "runs",
    `${month}${p(now.getDate())}_${p(now.getHours())}-${p(now.getMinutes())}-${p(now.getSeconds())}_${hostname()}`,
  );
}

let fileCounter = 0;

export class TensorBoardWriter {
  readonly file: string;

  constructor(readonly dir: string) {
    writingTo(dir, () => mkdirSync(dir, { recursive: true }));
    // PyTorch's SummaryWriter's name: events.out.tfevents.<seconds>.<host>.<pid>.<n>.
    this.file = join(
      dir,
      `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${hostname()}.${process.pid}.${fileCounter++}`,
    );
    this.#append(eventBytes(Date.now() / 1000, 0, { fileVersion: "brain.Event:2" }));
  }

  /** Writes a logged row's numbers (not its step) as scalars at `step`. */
  logRow(row: Record<string, number | string>, step: number): void {
    const scalars = Object.entries(row)
      .filter(([k, v]) => k !== "step" && typeof v === "number" && Number.isFinite(v))
      .map(([k, v]) => [tensorboardTag(k), v as number] as [string, number]);
    if (scalars.length) this.#append(eventBytes(Date.now() / 1000, step, { scalars }));
  }

  /** Flushes the file to disk (TensorBoard reads it as it grows; this makes it durable). */
  close(): void {
    const fd = openSync(this.file, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  #append(event: Buffer): void {
    writingTo(this.file, () => appendFileSync(this.file, tfRecord(event)));
  }
}

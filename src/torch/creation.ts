// Making tensors: from JavaScript data, from byte buffers, and by the factory functions
// PyTorch has. Numbers default to float32 (JavaScript cannot tell 1 from 1.0);
// ask for another dtype with { dtype }.
import { native } from "./native.js";
import { callNamed, Tensor, type NestedArray } from "./tensor.js";
import { dtypeCode, dtypeOfTypedArray, itemSize, type Device, type DType } from "./dtype.js";

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

function finish(t: Tensor, options: TensorOptions): Tensor {
  if (options.requiresGrad) t.requiresGrad_(true);
  return t;
}

function code(dtype: DType | undefined): number | null {
  return dtype === undefined ? null : dtypeCode(dtype);
}

function shapeOf(data: NestedArray): number[] {
  const shape: number[] = [];
  let level: NestedArray = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    if (level.length === 0) break;
    level = level[0];
  }
  return shape;
}

function flatten(data: NestedArray, shape: number[], depth: number, out: (number | boolean)[]): void {
  if (depth === shape.length) {
    if (typeof data !== "number" && typeof data !== "boolean") {
      throw new Error(
        `tensor(): expected a number at depth ${depth}, got ${Array.isArray(data) ? "an array" : typeof data}`,
      );
    }
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw new Error(
      `tensor(): ragged nested array: expected length ${shape[depth]} at depth ${depth}, ` +
        `got ${Array.isArray(data) ? data.length : typeof data}`,
    );
  }
  for (const item of data) flatten(item, shape, depth + 1, out);
}

function packed(values: (number | boolean)[], dtype: DType): ArrayBufferView {
  switch (dtype) {
    case "float64":
      return Float64Array.from(values, Number);
    case "int64":
      return BigInt64Array.from(values, (v) => BigInt(Math.trunc(Number(v))));
    case "int32":
      return Int32Array.from(values, Number);
    case "int16":
      return Int16Array.from(values, Number);
    case "int8":
      return Int8Array.from(values, Number);
    case "uint8":
      return Uint8Array.from(values, Number);
    case "bool":
      return Uint8Array.from(values, (v) => (v ? 1 : 0));
    default:
      return Float32Array.from(values, Number); // float16/bfloat16 cast below
  }
}

/**
 * A tensor from a number, a boolean, nested arrays or a typed array (copied).
 * dtype: the typed array's own, bool for booleans, else float32.
 */
export function tensor(
  data: NestedArray | ArrayBufferView,
  options: TensorOptions & { shape?: number[] } = {},
): Tensor {
  let values: ArrayBufferView;
  let shape: number[];
  let dtype: DType;
  if (ArrayBuffer.isView(data)) {
    const natural = dtypeOfTypedArray(data);
    dtype = options.dtype ?? natural;
    shape = options.shape ?? [data.byteLength / itemSize(natural)];
    values = data;
    const t = new Tensor(native.fromBuffer(values, dtypeCode(natural), shape));
    return finish(castAndMove(t, dtype, natural, options.device), options);
  }
  shape = shapeOf(data);
  const flat: (number | boolean)[] = [];
  flatten(data, shape, 0, flat);
  if (options.shape) {
    const n = options.shape.reduce((a, b) => a * b, 1);
    if (n !== flat.length)
      throw new Error(`tensor(): shape [${options.shape}] needs ${n} elements, the data has ${flat.length}`);
    shape = options.shape;
  }
  const natural: DType = flat.length > 0 && typeof flat[0] === "boolean" ? "bool" : "float32";
  dtype = options.dtype ?? natural;
  const stored: DType = dtype === "float16" || dtype === "bfloat16" ? "float32" : dtype;
  const t = new Tensor(native.fromBuffer(packed(flat, stored), dtypeCode(stored), shape));
  return finish(castAndMove(t, dtype, stored, options.device), options);
}

function castAndMove(t: Tensor, dtype: DType, current: DType, device: Device | undefined): Tensor {
  if (dtype === current && (device === undefined || device === "cpu")) return t;
  const out = t.to({ dtype, device });
  t.dispose();
  return out;
}

/**
 * A tensor with a copy of a byte buffer's contents, read as `dtype` in `shape` (little-endian,
 * row-major). Always a copy: a tensor that borrowed JavaScript memory could be left reading
 * freed memory when the buffer is transferred (postMessage, structuredClone) or shrunk, and a
 * detached buffer is an error. To fill a tensor without a copy, write into the memory
 * LibTorch owns: `readInto(torch.empty(shape, { dtype }), fd, position)`, or `t.dataView()`.
 */
export function fromBuffer(buffer: ArrayBufferView | ArrayBuffer, options: { dtype: DType; shape: number[] }): Tensor {
  if ((options as { copy?: unknown }).copy === false) {
    throw new Error(
      "fromBuffer: copy: false is no longer supported (a tensor cannot safely borrow JavaScript memory); " +
        "fill a torch.empty(shape, { dtype }) tensor with readInto() or through dataView() to avoid a copy",
    );
  }
  return new Tensor(native.fromBuffer(buffer, dtypeCode(options.dtype), options.shape));
}

/**
 * Reads `t`'s bytes (a contiguous CPU tensor: all of its elements, little-endian, row-major)
 * from the open file `fd` at byte `position`, straight into the tensor's memory. Returns the
 * bytes read, fewer than the tensor holds only when the file ends first (as fs.readSync).
 * Checkpoint loading fills `torch.empty(...)` tensors this way, with no copy.
 */
export function readInto(t: Tensor, fd: number, position: number): number {
  return native.readInto(t.id, fd, position);
}

export function zeros(shape: number[], options: TensorOptions = {}): Tensor {
  return finish(callNamed("zeros", { size: shape, dtype: code(options.dtype), device: options.device }), options);
}
export function ones(shape: number[], options: TensorOptions = {}): Tensor {
  return finish(callNamed("ones", { size: shape, dtype: code(options.dtype), device: options.device }), options);
}
export function full(shape: number[], value: number | boolean, options: TensorOptions = {}): Tensor {
  // Like PyTorch, full() of a whole number gives float32 unless a dtype is given.
  const dtype = options.dtype ?? (typeof value === "boolean" ? "bool" : "float32");
  return finish(
    callNamed("full", { size: shape, fill_value: value, dtype: dtypeCode(dtype), device: options.device }),
    options,
  );
}
export function empty(shape: number[], options: TensorOptions = {}): Tensor {
  return finish(
    callNamed("empty.memory_format", { size: shape, dtype: code(options.dtype), device: options.device }),
    options,
  );
}

/**
 * `arange(end)` or `arange(start, end, step)`. Whole-number arguments give int64, as in
 * PyTorch; any fractional argument gives float32.
 */
export function arange(start: number, end?: number, step = 1, options: TensorOptions = {}): Tensor {
  if (end === undefined) {
    end = start;
    start = 0;
  }
  const integral = [start, end, step].every(Number.isInteger);
  const dtype = options.dtype ?? (integral ? "int64" : "float32");
  return finish(
    callNamed("arange.start_step", { start, end, step, dtype: dtypeCode(dtype), device: options.device }),
    options,
  );
}

/** Uniform on [0, 1), from the generator seeded by manualSeed(). */
export function rand(shape: number[], options: TensorOptions = {}): Tensor {
  return finish(callNamed("rand", { size: shape, dtype: code(options.dtype), device: options.device }), options);
}
/** Standard normal, from the generator seeded by manualSeed(). */
export function randn(shape: number[], options: TensorOptions = {}): Tensor {
  return finish(callNamed("randn", { size: shape, dtype: code(options.dtype), device: options.device }), options);
}
/** Integers uniform on [low, high), int64 unless a dtype is given. */
export function randint(low: number, high: number, shape: number[], options: TensorOptions = {}): Tensor {
  return finish(
    callNamed("randint.low", {
      low,
      high,
      size: shape,
      dtype: dtypeCode(options.dtype ?? "int64"),
      device: options.device,
    }),
    options,
  );
}
/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number, options: TensorOptions = {}): Tensor {
  return finish(
    callNamed("randperm", { n, dtype: dtypeCode(options.dtype ?? "int64"), device: options.device }),
    options,
  );
}

export function zerosLike(t: Tensor, options: TensorOptions = {}): Tensor {
  return finish(callNamed("zeros_like", { self: t.id, dtype: code(options.dtype), device: options.device }), options);
}
export function onesLike(t: Tensor, options: TensorOptions = {}): Tensor {
  return finish(callNamed("ones_like", { self: t.id, dtype: code(options.dtype), device: options.device }), options);
}
export function fullLike(t: Tensor, value: number | boolean, options: TensorOptions = {}): Tensor {
  return finish(
    callNamed("full_like", { self: t.id, fill_value: value, dtype: code(options.dtype), device: options.device }),
    options,
  );
}
export function randLike(t: Tensor, options: TensorOptions = {}): Tensor {
  return finish(callNamed("rand_like", { self: t.id, dtype: code(options.dtype), device: options.device }), options);
}
export function randnLike(t: Tensor, options: TensorOptions = {}): Tensor {
  return finish(callNamed("randn_like", { self: t.id, dtype: code(options.dtype), device: options.device }), options);
}

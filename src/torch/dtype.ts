// Data types and devices: PyTorch's names, LibTorch's ScalarType codes, and the typed arrays that hold them.

export type DType =
  "float32" | "float64" | "float16" | "bfloat16" | "int64" | "int32" | "int16" | "int8" | "uint8" | "bool";
export type Device = "cpu" | "cuda" | `cuda:${number}`;

/** Whether `name` is a device this API knows ("cpu", "cuda", "cuda:N"), as opposed to a dtype or a typo. */
export function isDevice(name: string): name is Device {
  return name === "cpu" || /^cuda(:\d+)?$/.test(name);
}

/** `name` as a Device, or an error naming what is accepted (device names read from config files). */
export function toDevice(name: string): Device {
  if (!isDevice(name)) throw new Error(`unknown device '${name}' (expected cpu, cuda or cuda:N)`);
  return name;
}

/** c10::ScalarType codes (c10/core/ScalarType.h). */
const CODES: Record<DType, number> = {
  uint8: 0,
  int8: 1,
  int16: 2,
  int32: 3,
  int64: 4,
  float16: 5,
  float32: 6,
  float64: 7,
  bool: 11,
  bfloat16: 15,
};
const NAMES = new Map<number, DType>(Object.entries(CODES).map(([n, c]) => [c, n as DType]));

export const ALIASES: Record<string, DType> = {
  float: "float32",
  double: "float64",
  half: "float16",
  long: "int64",
  int: "int32",
  short: "int16",
};

export function dtypeCode(dtype: DType | string): number {
  const name = (ALIASES[dtype] ?? dtype) as DType;
  const code = CODES[name];
  if (code === undefined) {
    throw new Error(`unknown dtype '${dtype}'; expected one of ${Object.keys(CODES).join(", ")}`);
  }
  return code;
}

export function dtypeName(code: number): DType {
  const name = NAMES.get(code);
  if (!name) throw new Error(`tensor has a dtype this binding does not expose (ScalarType ${code})`);
  return name;
}

export function isFloating(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float64" || dtype === "float16" || dtype === "bfloat16";
}

export function itemSize(dtype: DType): number {
  switch (dtype) {
    case "float64":
    case "int64":
      return 8;
    case "float32":
    case "int32":
      return 4;
    case "float16":
    case "bfloat16":
    case "int16":
      return 2;
    default:
      return 1;
  }
}

export type TypedArray =
  Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array;

/** A typed array over `buffer` that matches `dtype` (16-bit floats come back as raw Uint16 bits). */
export function typedArrayFor(dtype: DType, buffer: ArrayBuffer, byteOffset = 0, length?: number): TypedArray {
  switch (dtype) {
    case "float32":
      return new Float32Array(buffer, byteOffset, length);
    case "float64":
      return new Float64Array(buffer, byteOffset, length);
    case "int64":
      return new BigInt64Array(buffer, byteOffset, length);
    case "int32":
      return new Int32Array(buffer, byteOffset, length);
    case "int16":
      return new Int16Array(buffer, byteOffset, length);
    case "int8":
      return new Int8Array(buffer, byteOffset, length);
    case "uint8":
    case "bool":
      return new Uint8Array(buffer, byteOffset, length);
    case "float16":
    case "bfloat16":
      return new Uint16Array(buffer, byteOffset, length);
  }
}

/** The dtype a typed array naturally holds. */
export function dtypeOfTypedArray(a: ArrayBufferView): DType {
  if (a instanceof Float32Array) return "float32";
  if (a instanceof Float64Array) return "float64";
  if (a instanceof BigInt64Array) return "int64";
  if (a instanceof Int32Array) return "int32";
  if (a instanceof Int16Array) return "int16";
  if (a instanceof Int8Array) return "int8";
  if (a instanceof Uint8Array) return "uint8";
  throw new Error(
    "unsupported typed array; use Float32Array, Float64Array, BigInt64Array, Int32Array, Int16Array, Int8Array or Uint8Array",
  );
}

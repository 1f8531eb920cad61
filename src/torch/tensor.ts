// The Tensor class: a handle on one LibTorch tensor, with PyTorch's methods camelCased.
// Each method is one operator call through the dispatcher (autograd included); the semantics,
// broadcasting and type promotion are LibTorch's own.
import { native } from "./native.js";
import { handle, positionalArguments } from "./ops.js";
import { armBackstop, track, untrack, type Owned } from "./scope.js";
import {
  dtypeCode,
  dtypeName,
  isDevice,
  isFloating,
  typedArrayFor,
  type Device,
  type DType,
  type TypedArray,
} from "./dtype.js";

export type Scalar = number | boolean;
export type TensorOrScalar = Tensor | Scalar;
/** A nested array of numbers (or booleans), as `toArray()` returns and `tensor()` accepts. */
export type NestedArray = number | boolean | NestedArray[];

/** Calls an operator and wraps its tensor result (always a fresh handle). */
export function callTensor(name: string, ...args: unknown[]): Tensor {
  const id = native.call(handle(name), ...args);
  if (id === null) throw new Error(`aten::${name} returned no tensor`);
  return new Tensor(id);
}

/**
 * Calls an operator with its arguments named as in its schema (`{ self: t.id, dim: 1 }`); an
 * argument left out takes its default, as a keyword argument left out in PyTorch.
 */
export function callNamed(name: string, args: Readonly<Record<string, unknown>>): Tensor {
  return callTensor(name, ...positionalArguments(name, args));
}

/** Calls an operator that returns several tensors (a tuple or a list). */
export function callTensors(name: string, ...args: unknown[]): Tensor[] {
  return (native.call(handle(name), ...args) as number[]).map((id) => new Tensor(id));
}

/** Calls an in-place operator; the handle it returns to its first argument is released at once. */
function callInPlace(name: string, ...args: unknown[]): void {
  native.free(native.call(handle(name), ...args));
}

/** callInPlace with the arguments named, as callNamed. */
function callInPlaceNamed(name: string, args: Readonly<Record<string, unknown>>): void {
  callInPlace(name, ...positionalArguments(name, args));
}

function shapeArgs(args: (number | number[])[]): number[] {
  return args.length === 1 && Array.isArray(args[0]) ? args[0] : (args as number[]);
}

function dims(dim: number | number[] | undefined): number[] | null {
  return dim === undefined ? null : Array.isArray(dim) ? dim : [dim];
}

export interface MaxResult {
  values: Tensor;
  indices: Tensor;
}

export class Tensor implements Owned {
  #id: number;
  #kept = false;
  /** @internal scope.ts's bookkeeping for the finalizer backstop. */
  backstopArmed = false;
  #meta: [number, Device, boolean, ...number[]] | null = null;
  /** The wrapper `grad` returned last (owned by its scope, like any tensor; see `grad`). */
  #grad: Tensor | null = null;

  /** Wraps a native tensor id. Library code only; users make tensors with torch.tensor() etc. */
  constructor(id: number) {
    this.#id = id;
    track(this);
  }

  /** The native id; throws if this tensor has been disposed. */
  get id(): number {
    if (this.#id < 0) {
      throw new Error(
        "this tensor has been disposed (by dispose() or by the tidy() that made it); " +
          "return it from tidy() or keep() it to use it afterwards",
      );
    }
    return this.#id;
  }

  get isDisposed(): boolean {
    return this.#id < 0;
  }
  get isKept(): boolean {
    return this.#kept;
  }

  /** Frees the native tensor now. Using this tensor afterwards throws. Safe to call twice. */
  dispose(): void {
    if (this.#id < 0) return;
    this.#grad = null;
    untrack(this);
    native.free(this.#id);
    this.#id = -1;
  }

  /** Exempts this tensor from the enclosing tidy(): the caller now owns it. */
  keep(): this {
    this.#kept = true;
    armBackstop(this);
    return this;
  }

  // ---- metadata -------------------------------------------------------------------------

  private meta(): [number, Device, boolean, ...number[]] {
    // Shape, dtype and device change only through setData() (no resize_), so they are read
    // once and re-read after it; requiresGrad can change and is read live. LibTorch names
    // devices as Device spells them ("cpu", "cuda:0").
    return (this.#meta ??= native.meta(this.id) as [number, Device, boolean, ...number[]]);
  }
  get shape(): number[] {
    return this.meta().slice(3) as number[];
  }
  get ndim(): number {
    return this.meta().length - 3;
  }
  get dtype(): DType {
    return dtypeName(this.meta()[0]);
  }
  get device(): Device {
    return this.meta()[1];
  }
  size(dim?: number): number | number[] {
    const s = this.shape;
    if (dim === undefined) return s;
    return s[dim < 0 ? dim + s.length : dim];
  }
  numel(): number {
    return native.numel(this.id);
  }

  // ---- autograd -------------------------------------------------------------------------

  get requiresGrad(): boolean {
    return native.requiresGrad(this.id);
  }
  set requiresGrad(value: boolean) {
    native.requiresGrad(this.id, value);
  }
  /** Sets requiresGrad (default true) and returns this tensor, as PyTorch's requires_grad_(). */
  requiresGrad_(value = true): this {
    native.requiresGrad(this.id, value);
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.id);
  }

  /**
   * The accumulated gradient, or null before backward() reaches this tensor. Reading it again
   * returns the same wrapper while the gradient is the same tensor (backward accumulates into
   * it in place) and that wrapper is alive; it belongs to the scope it was first read in, as
   * any tensor made there. After zeroGrad(), an assignment or a backward that makes a new
   * gradient, the next read returns a new wrapper, and earlier ones still hold the old gradient.
   */
  get grad(): Tensor | null {
    const known = this.#grad !== null && !this.#grad.isDisposed ? this.#grad : null;
    const id = native.grad(this.id, known ? known.id : -1);
    if (known && id === known.id) return known;
    return (this.#grad = id === null ? null : new Tensor(id));
  }
  set grad(value: Tensor | null) {
    native.setGrad(this.id, value === null ? null : value.id);
    this.#grad = null;
  }
  /** Drops the accumulated gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    native.setGrad(this.id, null);
    this.#grad = null;
  }

  /** Back-propagates from this tensor. A non-scalar tensor needs `gradient` of its shape. */
  backward(gradient?: Tensor, options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    const create = options.createGraph ?? false;
    native.backward(this.id, gradient ? gradient.id : null, options.retainGraph ?? create, create);
  }
  detach(): Tensor {
    return callTensor("detach", this.id);
  }

  /**
   * PyTorch's `t.data = src`: this tensor (the same object, leaf status, requiresGrad and grad)
   * now holds src's data, dtype, device and shape; src keeps sharing that memory. Module.to()
   * moves parameters this way, so an optimizer holding them keeps working.
   */
  setData(src: Tensor): void {
    native.setData(this.id, src.id);
    this.#meta = null;
  }

  // ---- conversion and output ------------------------------------------------------------

  /** Casts and/or moves: `to("float64")`, `to("cuda")`, `to({ dtype, device })`. */
  to(target: DType | Device | { dtype?: DType; device?: Device }): Tensor {
    const spec = typeof target === "string" ? (isDevice(target) ? { device: target } : { dtype: target }) : target;
    return callNamed("to.dtype_layout", {
      self: this.id,
      dtype: spec.dtype === undefined ? undefined : dtypeCode(spec.dtype),
      device: spec.device,
    });
  }
  float(): Tensor {
    return this.to("float32");
  }
  double(): Tensor {
    return this.to("float64");
  }
  long(): Tensor {
    return this.to("int64");
  }
  bool(): Tensor {
    return this.to("bool");
  }
  cpu(): Tensor {
    return this.to("cpu");
  }
  cuda(): Tensor {
    return this.to("cuda");
  }
  clone(): Tensor {
    return callTensor("clone", this.id);
  }

  /** A copy of the elements in a typed array (16-bit floats as their raw Uint16 bits). */
  data(): TypedArray {
    return typedArrayFor(this.dtype, native.toBuffer(this.id));
  }

  /**
   * A typed array over this tensor's own memory (contiguous CPU tensors only), no copy.
   * Writes through it change the tensor. It keeps the memory alive while it is reachable.
   */
  dataView(): TypedArray {
    return typedArrayFor(this.dtype, native.viewBuffer(this.id));
  }

  /** The elements as nested arrays of numbers (booleans for bool tensors), as tolist(). */
  toArray(): NestedArray {
    const dtype = this.dtype;
    if (dtype === "float16" || dtype === "bfloat16") {
      const f = this.to("float32");
      try {
        return f.toArray();
      } finally {
        if (f !== this) f.dispose();
      }
    }
    const flat = typedArrayFor(dtype, native.toBuffer(this.id));
    const values: (number | boolean)[] = new Array(flat.length);
    for (let i = 0; i < flat.length; i++) {
      const v = flat[i];
      values[i] = dtype === "bool" ? v !== 0 : Number(v);
    }
    const shape = this.shape;
    if (shape.length === 0) return values[0];
    let pos = 0;
    const build = (d: number): NestedArray[] => {
      const out: NestedArray[] = new Array(shape[d]);
      for (let i = 0; i < shape[d]; i++) out[i] = d === shape.length - 1 ? values[pos++] : build(d + 1);
      return out;
    };
    return build(0);
  }

  /** The value of a one-element tensor. */
  item(): number {
    const n = this.numel();
    if (n !== 1) throw new Error(`item() needs a tensor with one element, this one has ${n}`);
    const v = native.call(handle("item"), this.id);
    return typeof v === "boolean" ? Number(v) : v;
  }

  toString(): string {
    if (this.isDisposed) return "Tensor(disposed)";
    return `Tensor(shape=[${this.shape.join(", ")}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ---- arithmetic (broadcasting; numbers act as PyTorch's Python scalars) ---------------

  // An alpha left out reaches the addon as a trailing undefined: the schema default applies.
  /** this + alpha * other */
  add(other: TensorOrScalar, alpha?: number): Tensor {
    return other instanceof Tensor
      ? callTensor("add.Tensor", this.id, other.id, alpha)
      : callTensor("add.Scalar", this.id, other, alpha);
  }
  /** this - alpha * other */
  sub(other: TensorOrScalar, alpha?: number): Tensor {
    return other instanceof Tensor
      ? callTensor("sub.Tensor", this.id, other.id, alpha)
      : callTensor("sub.Scalar", this.id, other, alpha);
  }
  mul(other: TensorOrScalar): Tensor {
    return other instanceof Tensor
      ? callTensor("mul.Tensor", this.id, other.id)
      : callTensor("mul.Scalar", this.id, other);
  }
  div(other: TensorOrScalar, roundingMode?: "trunc" | "floor"): Tensor {
    if (roundingMode) {
      return other instanceof Tensor
        ? callTensor("div.Tensor_mode", this.id, other.id, roundingMode)
        : callTensor("div.Scalar_mode", this.id, other, roundingMode);
    }
    return other instanceof Tensor
      ? callTensor("div.Tensor", this.id, other.id)
      : callTensor("div.Scalar", this.id, other);
  }
  pow(exponent: TensorOrScalar): Tensor {
    return exponent instanceof Tensor
      ? callTensor("pow.Tensor_Tensor", this.id, exponent.id)
      : callTensor("pow.Tensor_Scalar", this.id, exponent);
  }
  maximum(other: Tensor): Tensor {
    return callTensor("maximum", this.id, other.id);
  }
  minimum(other: Tensor): Tensor {
    return callTensor("minimum", this.id, other.id);
  }
  /** Limits values to [min, max]; either bound may be omitted (null). */
  clamp(min: TensorOrScalar | null = null, max: TensorOrScalar | null = null): Tensor {
    if (min instanceof Tensor || max instanceof Tensor) {
      // A number beside a tensor bound becomes a 0-d tensor on this device (it used to be passed
      // as `undefined`, i.e. silently dropped), typed as PyTorch types a Python scalar: this
      // tensor's dtype, except a fractional bound of an integer tensor (default float).
      const keepType = (b: Scalar) => typeof b !== "number" || Number.isInteger(b) || isFloating(this.dtype);
      const bound = (b: TensorOrScalar | null): Tensor | null =>
        b === null || b instanceof Tensor
          ? b
          : callNamed("scalar_tensor", {
              s: b,
              dtype: keepType(b) ? dtypeCode(this.dtype) : undefined,
              device: this.device,
            });
      const lo = bound(min),
        hi = bound(max);
      try {
        return callNamed("clamp.Tensor", { self: this.id, min: lo?.id, max: hi?.id });
      } finally {
        if (lo && lo !== min) lo.dispose();
        if (hi && hi !== max) hi.dispose();
      }
    }
    return callTensor("clamp", this.id, min, max);
  }

  neg(): Tensor {
    return callTensor("neg", this.id);
  }
  exp(): Tensor {
    return callTensor("exp", this.id);
  }
  log(): Tensor {
    return callTensor("log", this.id);
  }
  log1p(): Tensor {
    return callTensor("log1p", this.id);
  }
  expm1(): Tensor {
    return callTensor("expm1", this.id);
  }
  sqrt(): Tensor {
    return callTensor("sqrt", this.id);
  }
  rsqrt(): Tensor {
    return callTensor("rsqrt", this.id);
  }
  square(): Tensor {
    return callTensor("square", this.id);
  }
  reciprocal(): Tensor {
    return callTensor("reciprocal", this.id);
  }
  abs(): Tensor {
    return callTensor("abs", this.id);
  }
  sign(): Tensor {
    return callTensor("sign", this.id);
  }
  sin(): Tensor {
    return callTensor("sin", this.id);
  }
  cos(): Tensor {
    return callTensor("cos", this.id);
  }
  tanh(): Tensor {
    return callTensor("tanh", this.id);
  }
  sigmoid(): Tensor {
    return callTensor("sigmoid", this.id);
  }
  logsigmoid(): Tensor {
    return callTensor("log_sigmoid", this.id);
  }
  softplus(beta = 1, threshold = 20): Tensor {
    return callTensor("softplus", this.id, beta, threshold);
  }
  relu(): Tensor {
    return callTensor("relu", this.id);
  }
  /** GELU, exact ("none") or with the tanh approximation ("tanh", GPT-2's gelu_new). */
  gelu(approximate: "none" | "tanh" = "none"): Tensor {
    return callTensor("gelu", this.id, approximate);
  }
  silu(): Tensor {
    return callTensor("silu", this.id);
  }
  round(): Tensor {
    return callTensor("round", this.id);
  }
  floor(): Tensor {
    return callTensor("floor", this.id);
  }

  // ---- comparisons and logic ------------------------------------------------------------

  eq(other: TensorOrScalar): Tensor {
    return this.compare("eq", other);
  }
  ne(other: TensorOrScalar): Tensor {
    return this.compare("ne", other);
  }
  lt(other: TensorOrScalar): Tensor {
    return this.compare("lt", other);
  }
  le(other: TensorOrScalar): Tensor {
    return this.compare("le", other);
  }
  gt(other: TensorOrScalar): Tensor {
    return this.compare("gt", other);
  }
  ge(other: TensorOrScalar): Tensor {
    return this.compare("ge", other);
  }
  private compare(op: string, other: TensorOrScalar): Tensor {
    return other instanceof Tensor
      ? callTensor(`${op}.Tensor`, this.id, other.id)
      : callTensor(`${op}.Scalar`, this.id, other);
  }
  logicalAnd(other: Tensor): Tensor {
    return callTensor("logical_and", this.id, other.id);
  }
  logicalOr(other: Tensor): Tensor {
    return callTensor("logical_or", this.id, other.id);
  }
  logicalXor(other: Tensor): Tensor {
    return callTensor("logical_xor", this.id, other.id);
  }
  logicalNot(): Tensor {
    return callTensor("logical_not", this.id);
  }
  /** True where the elements are finite (neither NaN nor infinite). */
  isfinite(): Tensor {
    return callTensor("isfinite", this.id);
  }
  isnan(): Tensor {
    return callTensor("isnan", this.id);
  }

  // ---- reductions -----------------------------------------------------------------------

  sum(dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined ? callTensor("sum", this.id) : callTensor("sum.dim_IntList", this.id, dims(dim), keepdim);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined ? callTensor("mean", this.id) : callTensor("mean.dim", this.id, dims(dim), keepdim);
  }
  /** The largest element, or with `dim` the values and indices along it. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): MaxResult;
  max(dim?: number, keepdim = false): Tensor | MaxResult {
    if (dim === undefined) return callTensor("max", this.id);
    const [values, indices] = callTensors("max.dim", this.id, dim, keepdim);
    return { values, indices };
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): MaxResult;
  min(dim?: number, keepdim = false): Tensor | MaxResult {
    if (dim === undefined) return callTensor("min", this.id);
    const [values, indices] = callTensors("min.dim", this.id, dim, keepdim);
    return { values, indices };
  }
  /** Running sum along `dim` (int64 for integer and bool inputs, as PyTorch). */
  cumsum(dim: number): Tensor {
    return callNamed("cumsum", { self: this.id, dim });
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return callNamed("argmax", { self: this.id, dim, keepdim });
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return callNamed("argmin", { self: this.id, dim, keepdim });
  }
  /** The k largest (or smallest) elements along `dim`, with their indices. */
  topk(k: number, dim = -1, largest = true): MaxResult {
    const [values, indices] = callTensors("topk", this.id, k, dim, largest, true);
    return { values, indices };
  }
  sort(dim = -1, descending = false): MaxResult {
    const [values, indices] = callTensors("sort.stable", this.id, false, dim, descending);
    return { values, indices };
  }
  /** Samples indices from the rows of this probability tensor, using manualSeed()'s generator. */
  multinomial(numSamples: number, replacement = false): Tensor {
    return callNamed("multinomial", { self: this.id, num_samples: numSamples, replacement });
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return callTensor("logsumexp", this.id, dims(dim), keepdim);
  }
  /** Variance with Bessel's correction by default (correction 1), as torch.var. */
  var(dim?: number | number[], options: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return callTensor("var.correction", this.id, dims(dim), options.correction ?? 1, options.keepdim ?? false);
  }
  std(dim?: number | number[], options: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return callTensor("std.correction", this.id, dims(dim), options.correction ?? 1, options.keepdim ?? false);
  }
  /** The p-norm (default 2) of all elements, or along `dim`. */
  norm(p: number = 2, dim?: number | number[], keepdim = false): Tensor {
    return dim === undefined
      ? callTensor("norm.Scalar", this.id, p)
      : callTensor("norm.ScalarOpt_dim", this.id, p, dims(dim), keepdim);
  }

  // ---- shape ----------------------------------------------------------------------------

  reshape(...shape: (number | number[])[]): Tensor {
    return callTensor("reshape", this.id, shapeArgs(shape));
  }
  view(...shape: (number | number[])[]): Tensor {
    return callTensor("view", this.id, shapeArgs(shape));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return callTensor("flatten.using_ints", this.id, startDim, endDim);
  }
  transpose(dim0: number, dim1: number): Tensor {
    return callTensor("transpose.int", this.id, dim0, dim1);
  }
  /** The transpose of a matrix (at most 2-D), as Tensor.t(). */
  t(): Tensor {
    return callTensor("t", this.id);
  }
  permute(...order: (number | number[])[]): Tensor {
    return callTensor("permute", this.id, shapeArgs(order));
  }
  contiguous(): Tensor {
    return callTensor("contiguous", this.id);
  }
  squeeze(dim?: number): Tensor {
    return dim === undefined ? callTensor("squeeze", this.id) : callTensor("squeeze.dim", this.id, dim);
  }
  unsqueeze(dim: number): Tensor {
    return callTensor("unsqueeze", this.id, dim);
  }
  /** Broadcasts to `shape` without copying; -1 keeps a dimension. */
  expand(...shape: (number | number[])[]): Tensor {
    return callTensor("expand", this.id, shapeArgs(shape));
  }
  expandAs(other: Tensor): Tensor {
    return this.expand(other.shape);
  }
  repeat(...repeats: (number | number[])[]): Tensor {
    return callTensor("repeat", this.id, shapeArgs(repeats));
  }
  /** Splits into pieces of `size` along `dim`, or into pieces of the given sizes. */
  split(size: number | number[], dim = 0): Tensor[] {
    return Array.isArray(size)
      ? callTensors("split_with_sizes", this.id, size, dim)
      : callTensors("split.Tensor", this.id, size, dim);
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return callTensors("chunk", this.id, chunks, dim);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return callTensor("narrow", this.id, dim, start, length);
  }
  /** Python's `x[..., start:end:step]` along `dim` (a view). */
  slice(dim: number, start: number | null = null, end: number | null = null, step = 1): Tensor {
    return callTensor("slice.Tensor", this.id, dim, start, end, step);
  }
  /** Selects index `index` along `dim`, dropping that dimension (a view), as `x[:, i]`. */
  select(dim: number, index: number): Tensor {
    return callTensor("select.int", this.id, dim, index);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return callTensor("index_select", this.id, dim, index.id);
  }
  gather(dim: number, index: Tensor): Tensor {
    return callTensor("gather", this.id, dim, index.id, false);
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return callTensor("scatter_add", this.id, dim, index.id, src.id);
  }
  maskedFill(mask: Tensor, value: TensorOrScalar): Tensor {
    return value instanceof Tensor
      ? callTensor("masked_fill.Tensor", this.id, mask.id, value.id)
      : callTensor("masked_fill.Scalar", this.id, mask.id, value);
  }
  tril(diagonal = 0): Tensor {
    return callTensor("tril", this.id, diagonal);
  }
  triu(diagonal = 0): Tensor {
    return callTensor("triu", this.id, diagonal);
  }
  flip(...dimsToFlip: (number | number[])[]): Tensor {
    return callTensor("flip", this.id, shapeArgs(dimsToFlip));
  }

  // ---- linear algebra and nn ------------------------------------------------------------

  matmul(other: Tensor): Tensor {
    return callTensor("matmul", this.id, other.id);
  }
  bmm(other: Tensor): Tensor {
    return callTensor("bmm", this.id, other.id);
  }
  softmax(dim: number): Tensor {
    return callNamed("softmax.int", { self: this.id, dim });
  }
  logSoftmax(dim: number): Tensor {
    return callNamed("log_softmax.int", { self: this.id, dim });
  }

  // ---- in place (return this; PyTorch's autograd rules for in-place ops apply) --------

  add_(other: TensorOrScalar, alpha: number = 1): this {
    if (other instanceof Tensor) callInPlace("add_.Tensor", this.id, other.id, alpha);
    else callInPlace("add_.Scalar", this.id, other, alpha);
    return this;
  }
  sub_(other: TensorOrScalar, alpha: number = 1): this {
    if (other instanceof Tensor) callInPlace("sub_.Tensor", this.id, other.id, alpha);
    else callInPlace("sub_.Scalar", this.id, other, alpha);
    return this;
  }
  mul_(other: TensorOrScalar): this {
    if (other instanceof Tensor) callInPlace("mul_.Tensor", this.id, other.id);
    else callInPlace("mul_.Scalar", this.id, other);
    return this;
  }
  div_(other: TensorOrScalar): this {
    if (other instanceof Tensor) callInPlace("div_.Tensor", this.id, other.id);
    else callInPlace("div_.Scalar", this.id, other);
    return this;
  }
  /** this += value * tensor1 * tensor2 */
  addcmul_(tensor1: Tensor, tensor2: Tensor, value: number = 1): this {
    callInPlace("addcmul_", this.id, tensor1.id, tensor2.id, value);
    return this;
  }
  /** this += value * tensor1 / tensor2 */
  addcdiv_(tensor1: Tensor, tensor2: Tensor, value: number = 1): this {
    callInPlace("addcdiv_", this.id, tensor1.id, tensor2.id, value);
    return this;
  }
  /** this += weight * (end - this) */
  lerp_(end: Tensor, weight: number): this {
    callInPlace("lerp_.Scalar", this.id, end.id, weight);
    return this;
  }
  copy_(src: Tensor): this {
    callInPlace("copy_", this.id, src.id, false);
    return this;
  }
  fill_(value: Scalar): this {
    callInPlace("fill_.Scalar", this.id, value);
    return this;
  }
  zero_(): this {
    callInPlace("zero_", this.id);
    return this;
  }
  clamp_(min: number | null = null, max: number | null = null): this {
    callInPlace("clamp_", this.id, min, max);
    return this;
  }
  uniform_(from = 0, to = 1): this {
    callInPlaceNamed("uniform_", { self: this.id, from, to });
    return this;
  }
  normal_(mean = 0, std = 1): this {
    callInPlaceNamed("normal_", { self: this.id, mean, std });
    return this;
  }
}

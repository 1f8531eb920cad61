// Deterministic memory for tensors. Every tensor made inside `tidy(fn)` is freed when fn
// returns, except what fn returns (which moves to the enclosing scope) and what was `keep()`-ed.
// A FinalizationRegistry frees tensors the program forgot, but only as a backstop: LibTorch's
// memory is invisible to the garbage collector's sense of urgency, so waiting for it is slow.
// A tensor owned by a scope needs no backstop (the scope frees it), so it is armed only when
// it leaves every scope: made outside one, returned from the outermost, or kept.
import { native } from "./native.js";

/** What a scope needs from a tensor; implemented by Tensor. */
export interface Owned {
  readonly isDisposed: boolean;
  readonly isKept: boolean;
  /** The native id (for the backstop); throws once disposed. */
  readonly id: number;
  /** Whether the finalizer backstop is registered for it (scope.ts's bookkeeping). */
  backstopArmed: boolean;
  dispose(): void;
}

const scopes: Owned[][] = [];

const finalizer = new FinalizationRegistry<number>((id) => native.free(id));

/** Frees `t`'s native tensor if `t` is garbage-collected without being disposed. */
export function armBackstop(t: Owned): void {
  if (t.backstopArmed || t.isDisposed) return;
  t.backstopArmed = true;
  finalizer.register(t, t.id, t);
}

// Tensors made outside any scope are armed a little later, in batches: most are disposed
// right after use (`a.add(b)` ... `dispose()`), and those never pay for registration.
// The batch is bounded so that a long synchronous loop still hands forgotten tensors to the
// garbage collector.
const pending: Owned[] = [];
let flushQueued = false;
const PENDING_LIMIT = 1024;

function flushPending(): void {
  flushQueued = false;
  for (const t of pending) armBackstop(t);
  pending.length = 0;
}

/** Called by every new tensor wrapper: the innermost scope owns it, or else the backstop. */
export function track(t: Owned): void {
  const scope = scopes[scopes.length - 1];
  if (scope) {
    scope.push(t);
    return;
  }
  pending.push(t);
  if (pending.length >= PENDING_LIMIT) flushPending();
  else if (!flushQueued) {
    flushQueued = true;
    queueMicrotask(flushPending);
  }
}

/** Called by Tensor.dispose: the native slot is freed now, so the backstop must not fire later. */
export function untrack(t: Owned): void {
  if (t.backstopArmed) {
    finalizer.unregister(t);
    t.backstopArmed = false;
  }
}

/** Calls each tensor found in `value` (a tensor, or arrays and plain objects holding them). */
export function forEachTensor(value: unknown, fn: (t: Owned) => void, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if (isOwned(value)) {
    fn(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) forEachTensor(v, fn, seen);
    return;
  }
  if (value instanceof Map) {
    for (const v of value.values()) forEachTensor(v, fn, seen);
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    for (const v of Object.values(value)) forEachTensor(v, fn, seen);
  }
}

function isOwned(v: object): v is Owned {
  return typeof (v as Owned).dispose === "function" && "isKept" in v && "isDisposed" in v;
}

/**
 * Runs `fn` and frees every tensor it made, except the ones it returns and the ones kept with
 * `keep()`. Returned tensors belong to the enclosing scope, so tidies nest. `fn` must be
 * synchronous: a scope cannot follow an `await`.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Owned[] = [];
  scopes.push(scope);
  let result: T | undefined;
  let ok = false;
  try {
    result = fn();
    if (result instanceof Promise) {
      throw new Error("tidy() takes a synchronous function; wrap the synchronous parts of async code in tidy()");
    }
    ok = true;
    return result;
  } finally {
    scopes.pop();
    const returned = new Set<Owned>();
    if (ok) forEachTensor(result, (t) => returned.add(t));
    const parent = scopes[scopes.length - 1];
    for (const t of scope) {
      if (t.isDisposed) continue;
      if (returned.has(t)) {
        if (parent) parent.push(t);
        else armBackstop(t);
      } else if (t.isKept) armBackstop(t);
      else t.dispose();
    }
  }
}

/** Frees every tensor found in `value` now. */
export function dispose(value: unknown): void {
  forEachTensor(value, (t) => t.dispose());
}

/**
 * What the engine holds. `tensors`: live tensor handles; `bytes`: what their storages hold
 * (views share storage and count once; every device); `cpuAllocated`: every byte LibTorch holds
 * in CPU memory, which also counts tensors no handle names, such as those an autograd graph
 * saved for backward. A graph lives as long as a tensor made from it does, so `cpuAllocated`
 * far above `bytes` usually means outputs of forward passes that were never disposed.
 * `cpuPeak`: the most `cpuAllocated` has been since takeCpuPeak() last ran.
 */
export function memory(): { tensors: number; bytes: number; cpuAllocated: number; cpuPeak: number } {
  return native.memory();
}

/** The most `cpuAllocated` has been since the last call (or since the engine loaded); the peak then starts again from now. */
export function takeCpuPeak(): number {
  return native.memory(true).cpuPeak;
}

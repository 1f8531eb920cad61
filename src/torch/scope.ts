// Deterministic memory for tensors. Every tensor made inside `tidy(fn)` is freed when fn
// returns, except what fn returns (which moves to the enclosing scope) and what was `keep()`-ed.
// A FinalizationRegistry frees tensors the program forgot, but only as a backstop: LibTorch's
// memory is invisible to the garbage collector's sense of urgency, so waiting for it is slow.
import { native } from "./native.js";

/** What a scope needs from a tensor; implemented by Tensor. */
export interface Owned {
  readonly isDisposed: boolean;
  readonly isKept: boolean;
  dispose(): void;
}

const scopes: Owned[][] = [];

const finalizer = new FinalizationRegistry<number>((id) => native.free(id));

/** Called by every new tensor wrapper: remember it in the innermost scope and arm the backstop. */
export function track(t: Owned, id: number): void {
  finalizer.register(t, id, t);
  const scope = scopes[scopes.length - 1];
  if (scope) scope.push(t);
}

/** Called by Tensor.dispose: the native slot is freed now, so the backstop must not fire later. */
export function untrack(t: Owned): void {
  finalizer.unregister(t);
}

/** Calls each tensor found in `value` (a tensor, or arrays and plain objects holding them). */
export function forEachTensor(value: unknown, fn: (t: Owned) => void, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if (isOwned(value)) { fn(value); return; }
  if (Array.isArray(value)) { for (const v of value) forEachTensor(v, fn, seen); return; }
  if (value instanceof Map) { for (const v of value.values()) forEachTensor(v, fn, seen); return; }
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
      if (returned.has(t)) { if (parent) parent.push(t); }
      else if (!t.isKept && !t.isDisposed) t.dispose();
    }
  }
}

/** Frees every tensor found in `value` now. */
export function dispose(value: unknown): void {
  forEachTensor(value, (t) => t.dispose());
}

/** Live tensors and the bytes their storages hold (views share storage and count once). */
export function memory(): { tensors: number; bytes: number } {
  return native.memory();
}

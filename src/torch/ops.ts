// Operator handles: each LibTorch operator is looked up by its schema name once, then called
// by number. Names are written as in PyTorch's native_functions.yaml, "name.overload".
import { native } from "./native.js";

const handles = new Map<string, number>();

function split(name: string): [string, string] {
  const dot = name.indexOf(".");
  return dot < 0 ? [`aten::${name}`, ""] : [`aten::${name.slice(0, dot)}`, name.slice(dot + 1)];
}

/** The handle of an aten operator, e.g. `handle("add.Tensor")`. */
export function handle(name: string): number {
  let h = handles.get(name);
  if (h === undefined) {
    h = native.op(...split(name));
    handles.set(name, h);
  }
  return h;
}

/** Whether this LibTorch has the operator (fused kernels differ between versions). */
const available = new Map<string, boolean>();
export function hasOp(name: string): boolean {
  let has = available.get(name);
  if (has === undefined) available.set(name, (has = native.hasOp(...split(name))));
  return has;
}

/** The operator's schema as LibTorch prints it: argument names, types and defaults. */
export function schemaOf(name: string): string {
  return native.schema(handle(name));
}

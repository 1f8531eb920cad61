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

/** Each operator's argument names, in schema order, by name ("self" -> 0), read once from its schema. */
const argumentIndex = new Map<string, ReadonlyMap<string, number>>();

/** Splits a schema's argument list at its top-level commas ("int[2] stride=[1, 1]" holds one). */
function splitArguments(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c === "(" || c === "[") depth++;
    else if (c === ")" || c === "]") depth--;
    else if (c === "," && depth === 0) {
      parts.push(list.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(list.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== "" && p !== "*");
}

/** The names of an operator's arguments, in the order its schema lists them ("self", "dim", "dtype"). */
export function argumentNames(name: string): string[] {
  return [...indexOf(name).keys()];
}

function indexOf(name: string): ReadonlyMap<string, number> {
  let index = argumentIndex.get(name);
  if (index === undefined) {
    // "aten::name.overload(ARGUMENTS) -> RETURNS": the arguments sit between the first "(" and the ") ->".
    const schema = schemaOf(name);
    const list = schema.slice(schema.indexOf("(") + 1, schema.lastIndexOf(") ->"));
    // Each argument is "TYPE NAME" or "TYPE NAME=DEFAULT"; the type may hold spaces ("Tensor(a!) self").
    const names = splitArguments(list).map((arg) => arg.split("=")[0].trim().split(/\s+/).at(-1)!);
    index = new Map(names.map((n, i) => [n, i]));
    argumentIndex.set(name, index);
  }
  return index;
}

/**
 * `args`, named as in the operator's schema, as the positional list the addon takes: an argument
 * left out (or undefined) takes its schema default, as a keyword argument left out in PyTorch.
 * A name the schema lacks is an error listing the ones it has.
 */
export function positionalArguments(name: string, args: Readonly<Record<string, unknown>>): unknown[] {
  const index = indexOf(name);
  const out: unknown[] = [];
  for (const [key, value] of Object.entries(args)) {
    const i = index.get(key);
    if (i === undefined)
      throw new Error(`aten::${name} has no argument '${key}'; its arguments: ${[...index.keys()].join(", ")}`);
    out[i] = value;
  }
  // Holes (arguments not given) read as undefined, which the addon fills with the default.
  return Array.from(out);
}

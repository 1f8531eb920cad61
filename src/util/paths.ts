// Inputs and outputs compared as the file system sees them: symlinks resolved (also for paths
// that do not exist yet), so `out -> prompts.jsonl` or `runs/x/../x` is recognised as the same
// place. Commands use it to refuse an output that would overwrite or delete one of their inputs.
import { existsSync, realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";

/** A path with symlinks resolved, also when it does not exist yet (its nearest existing ancestor is resolved). */
export function realPath(p: string): string {
  let head = resolve(p);
  const tail: string[] = [];
  while (!existsSync(head) && dirname(head) !== head) {
    tail.unshift(basename(head));
    head = dirname(head);
  }
  return join(realpathSync(head), ...tail);
}

/** Whether `inner` is `outer` or lies below it (both resolved with realPath). */
export function isWithin(inner: string, outer: string): boolean {
  const rel = relative(realPath(outer), realPath(inner));
  return rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** A path a command is given, with the flag or key that named it (`--prompts`, `model_name_or_path`). */
export interface NamedPath { name: string; path: string }

/** The first output that is one of the inputs (after resolving links), as a message; null when none is. */
export function sameFileAs(outputs: NamedPath[], inputs: NamedPath[]): string | null {
  for (const out of outputs) {
    for (const input of inputs) {
      if (realPath(out.path) === realPath(input.path)) {
        return `${out.name} ${out.path} is ${input.name} (${input.path}${realPath(input.path) !== resolve(input.path) ? ` -> ${realPath(input.path)}` : ""})`;
      }
    }
  }
  return null;
}

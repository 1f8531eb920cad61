// Inputs and outputs compared as the file system sees them: symlinks resolved (also for paths
// that do not exist yet), so `out -> prompts.jsonl` or `runs/x/../x` is recognised as the same
// place. Commands use it to refuse an output that would overwrite or delete one of their inputs.
import { existsSync, realpathSync, statSync } from "node:fs";
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
export interface NamedPath {
  name: string;
  path: string;
}

/**
 * The first output that would overwrite an input, as a message naming both; null when none
 * would. An output clashes with an input file it is (after resolving links), and with an input
 * directory (a model) it is or lies inside, since it would be written among that input's files.
 */
export function outputClash(outputs: NamedPath[], inputs: NamedPath[]): string | null {
  for (const out of outputs) {
    for (const input of inputs) {
      const dir = existsSync(input.path) && statSync(input.path).isDirectory();
      const real = realPath(input.path);
      const shown = `${input.path}${real !== resolve(input.path) ? `, which is ${real}` : ""}`;
      if (realPath(out.path) === real) return `${out.name} ${out.path} is ${input.name} (${shown})`;
      if (dir && isWithin(out.path, input.path)) return `${out.name} ${out.path} lies inside ${input.name} (${shown})`;
    }
  }
  return null;
}

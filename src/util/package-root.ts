// The directory holding omni-dpo's package.json, from either src/ (ts) or dist/src/ (js).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) || !existsSync(join(dir, "native"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("omni-dpo: cannot find the package root");
    dir = up;
  }
  return (root = dir);
}

/** omni-dpo's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
}

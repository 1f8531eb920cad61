// Files written whole or not at all: the content goes to a temporary name first and is renamed
// into place, so an interrupted run never leaves a half-written file under the final name.
import { renameSync, writeFileSync } from "node:fs";

export function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
}

/** One JSON object per line (JSONL). */
export function writeJsonLinesAtomic(file: string, rows: unknown[]): void {
  writeFileAtomic(file, rows.map((r) => JSON.stringify(r)).join("\n") + (rows.length ? "\n" : ""));
}

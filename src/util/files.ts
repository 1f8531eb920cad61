// Files written whole or not at all, and durably: the content goes to a temporary name, is
// fsynced, renamed into place, and the directory is fsynced, so neither an interrupted run nor
// a power cut leaves a half-written file under the final name (or a rename that never reached
// the disk). Write errors (a full disk, a quota, an I/O error) name the file being written.
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";

/** A write that failed, naming the path; `code` is the system's (ENOSPC, EDQUOT, EIO, EFBIG...). */
export class WriteError extends Error {
  readonly code: string | undefined;
  constructor(readonly path: string, cause: unknown) {
    const e = cause as NodeJS.ErrnoException;
    super(`${path}: cannot write (${e?.message ?? String(cause)})`, { cause });
    this.name = "WriteError";
    this.code = e?.code;
  }
}

/** Runs `write`, turning any error into a WriteError naming `path` (an existing one is kept). */
export function writingTo<T>(path: string, write: () => T): T {
  try {
    return write();
  } catch (e) {
    throw e instanceof WriteError ? e : new WriteError(path, e);
  }
}

/** The temporary name a file is written under before its rename: `<file>.tmp-<pid>`. */
export function tempPath(file: string): string {
  return `${file}.tmp-${process.pid}`;
}

/** Whether a directory entry is a temporary name (of this module's writers, the safetensors writer's or a checkpoint's). */
export function isTempName(name: string): boolean {
  return /\.tmp-\d+$/.test(name);
}

/** fsyncs a file or a directory (a directory's fsync makes the renames and creations in it durable). */
export function fsyncPath(path: string): void {
  writingTo(path, () => {
    const fd = openSync(path, "r");
    try { fsyncSync(fd); } finally { closeSync(fd); }
  });
}

/** fsyncs every file under `dir` (recursively), then each directory, deepest first, `dir` last. */
export function fsyncTree(dir: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) fsyncTree(path);
    else fsyncPath(path);
  }
  fsyncPath(dir);
}

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = tempPath(file);
  try {
    const fd = openSync(tmp, "w");
    try {
      const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
      for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, bytes.byteLength - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new WriteError(file, e);
  }
  fsyncPath(dirname(file));
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
}

/** One JSON object per line (JSONL). */
export function writeJsonLinesAtomic(file: string, rows: unknown[]): void {
  writeFileAtomic(file, rows.map((r) => JSON.stringify(r)).join("\n") + (rows.length ? "\n" : ""));
}

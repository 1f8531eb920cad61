// Reading a text file line by line, in bounded chunks, for JSON Lines and prompt files: memory
// stays at one line (plus a chunk) whatever the file's size, a line longer than the bound is
// skipped over without being held, and each line is decoded as strict UTF-8, so every problem
// can name the file, the line and the byte. A device (/dev/zero, a terminal) is refused: it never
// ends; a pipe is read, but a line past the bound ends the reading, since its end may never come.
import { closeSync, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { decodeUtf8, Utf8Error } from "../util/utf8.js";
import { DataError } from "./records.js";

/** The most bytes one line (one record) may hold: 64 MiB. */
export const MAX_LINE_BYTES = 64 * 2 ** 20;

const CHUNK_BYTES = 2 ** 20;

/** A line's text, or why it cannot be read; `number` counts from 1, blank lines included. */
export type Line = { number: number; text: string } | { number: number; problem: string };

/** A size limit for messages: "64 MiB" when it is whole MiB, else bytes. */
export function sizeLimit(bytes: number): string {
  return bytes % 2 ** 20 === 0 ? `${bytes / 2 ** 20} MiB` : `${bytes} bytes`;
}

/** Refuses a device (a data file that is one never ends, or is no data); regular files, pipes and FIFOs pass. */
export function checkReadable(file: string, stats: Stats): void {
  const kind = stats.isDirectory()
    ? "a directory"
    : stats.isCharacterDevice()
      ? "a character device"
      : stats.isBlockDevice()
        ? "a block device"
        : stats.isSocket()
          ? "a socket"
          : null;
  if (kind) throw new DataError([`${file}: is ${kind}, not a data file`]);
}

/**
 * The lines of `file` split at "\n" (a "\r" before it stays, as with split("\n")), a BOM at the
 * start of the file dropped. A final line without "\n" counts; an empty one after the last
 * "\n" does not.
 */
export function* readLines(file: string, maxLineBytes = MAX_LINE_BYTES): Generator<Line> {
  const fd = openSync(file, "r");
  try {
    const stats = fstatSync(fd);
    checkReadable(file, stats);
    let parts: Uint8Array[] = [];
    let lineBytes = 0;
    let lineStart = 0; // the line's offset in the file
    let number = 1;
    let fileOffset = 0; // the current chunk's offset in the file
    const finish = (): Line => {
      if (lineBytes > maxLineBytes) {
        return {
          number,
          problem: `${file}:${number}: the line holds ${lineBytes} bytes, above the limit of ${sizeLimit(maxLineBytes)} for one line`,
        };
      }
      const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      try {
        return { number, text: decodeUtf8(bytes, number === 1) };
      } catch (e) {
        if (!(e instanceof Utf8Error)) throw e;
        return {
          number,
          problem: `${file}:${number}: invalid UTF-8 at byte ${lineStart + e.byteOffset} of the file (byte ${e.byteOffset} of the line)`,
        };
      }
    };
    for (;;) {
      // A fresh buffer per read: the parts of the current line are views into it, not copies.
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      const n = readSync(fd, chunk, 0, CHUNK_BYTES, null);
      if (n === 0) break;
      const data = chunk.subarray(0, n);
      let from = 0;
      for (;;) {
        const nl = data.indexOf(0x0a, from);
        const end = nl === -1 ? n : nl;
        // Past the bound only the count goes on, so an over-long line is never held in memory.
        if (lineBytes + (end - from) <= maxLineBytes) parts.push(data.subarray(from, end));
        else parts = [];
        lineBytes += end - from;
        if (lineBytes > maxLineBytes && !stats.isFile()) {
          // A regular file's over-long line ends (the file does); a pipe's may not: stop here.
          throw new DataError([
            `${file}:${number}: the line passes the limit of ${sizeLimit(maxLineBytes)} for one line, ` +
              "and the file is not a regular file (a pipe), so its end may never come: reading stopped",
          ]);
        }
        if (nl === -1) break;
        yield finish();
        number++;
        lineStart = fileOffset + nl + 1;
        parts = [];
        lineBytes = 0;
        from = nl + 1;
      }
      fileOffset += n;
    }
    if (lineBytes > 0) yield finish();
  } finally {
    closeSync(fd);
  }
}

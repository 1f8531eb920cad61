// Strict UTF-8 decoding for every file the toolkit reads as text. Node's own "utf8" decoding
// replaces invalid bytes with U+FFFD without a word, so a corrupt file would train on
// replacement characters; here invalid bytes are an error that says where they are.
import { readFileSync } from "node:fs";

const BOM = "\uFEFF";
// ignoreBOM: true keeps a leading BOM in the output, so only the caller decides where one is
// allowed (the start of a file), not every decode call.
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Bytes that are not UTF-8: `byteOffset` is the first invalid byte and `line` its line (from 1),
 * both counted from the start of the bytes decoded.
 */
export class Utf8Error extends Error {
  constructor(
    readonly byteOffset: number,
    readonly line: number,
  ) {
    super(`invalid UTF-8 at byte ${byteOffset} (line ${line})`);
    this.name = "Utf8Error";
  }
}

/**
 * Decodes `bytes` as UTF-8, throwing Utf8Error at the first invalid byte. With `atFileStart`,
 * a leading byte-order mark is a BOM and is dropped; anywhere else U+FEFF is text.
 */
export function decodeUtf8(bytes: Uint8Array, atFileStart = false): string {
  let text: string;
  try {
    text = strict.decode(bytes);
  } catch {
    const offset = firstInvalidByte(bytes);
    let line = 1;
    for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
    throw new Utf8Error(offset, line);
  }
  return atFileStart && text.startsWith(BOM) ? text.slice(BOM.length) : text;
}

/** The offset of the first byte that does not belong to a valid UTF-8 sequence (run only on failure). */
function firstInvalidByte(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    // Sequence length and the allowed range of the second byte (excluding overlong forms,
    // UTF-16 surrogates and code points above U+10FFFF), as the Unicode standard's table 3-7.
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) n = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      n = 3;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 4;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k < n; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n;
  }
  return bytes.length;
}

/**
 * A whole text file as strict UTF-8 (a leading BOM dropped). Unreadable files and invalid bytes
 * become `makeError(message)`, the message naming the file (and the line and byte).
 */
export function readTextFile(
  path: string,
  makeError: (message: string, cause: unknown) => Error = (m, cause) => new Error(m, { cause }),
): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw makeError(`cannot read ${path}: ${(e as Error).message}`, e);
  }
  try {
    return decodeUtf8(bytes, true);
  } catch (e) {
    if (!(e instanceof Utf8Error)) throw e;
    throw makeError(`${path}:${e.line}: invalid UTF-8 at byte ${e.byteOffset}; the file must be UTF-8`, e);
  }
}

/**
 * A file holding one JSON object, read as strict UTF-8. Unreadable files, invalid bytes, bad
 * JSON and anything but an object become `makeError(message)`, the message naming the file.
 */
export function readJsonObjectFile(
  path: string,
  makeError: (message: string, cause: unknown) => Error = (m, cause) => new Error(m, { cause }),
): Record<string, unknown> {
  const text = readTextFile(path, makeError);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw makeError(`${path}: not valid JSON (${(e as Error).message})`, e);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw makeError(
      `${path}: must hold a JSON object, found ${Array.isArray(value) ? "an array" : value === null ? "null" : typeof value}`,
      undefined,
    );
  }
  return value as Record<string, unknown>;
}

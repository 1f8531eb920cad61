// Reading the JSON and text files of a tokenizer directory, with errors that name the file.
// Text is strict UTF-8: a BOM at the start is accepted, invalid bytes are an error.
import { existsSync } from "node:fs";
import { basename, dirname } from "node:path";
import { readJsonObjectFile, readTextFile } from "../util/utf8.js";
import { TokenizerError } from "./errors.js";

export type JsonObject = Record<string, unknown>;

/** Parses `path` as a JSON object. Missing file: names the directory and the file; bad JSON: names the file. */
export function readJsonObject(path: string, missingHint = ""): JsonObject {
  if (!existsSync(path)) {
    throw new TokenizerError(`no ${basename(path)} in ${dirname(path)}${missingHint ? ` (${missingHint})` : ""}`);
  }
  return readJsonObjectFile(path, (message, cause) => new TokenizerError(message, { cause }));
}

/** As readJsonObject, or undefined when the file does not exist. */
export function readJsonObjectIfExists(path: string): JsonObject | undefined {
  return existsSync(path) ? readJsonObject(path) : undefined;
}

/** Reads a text file, or undefined when it does not exist. */
export function readTextIfExists(path: string): string | undefined {
  return existsSync(path) ? readText(path) : undefined;
}

/** A file's text as strict UTF-8, a leading BOM dropped; unreadable or invalid bytes name the file (and the line and byte). */
function readText(path: string): string {
  return readTextFile(path, (message, cause) => new TokenizerError(message, { cause }));
}

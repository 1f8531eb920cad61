// config.json: the raw hyperparameter object every architecture reads its fields from, and the
// typed reads of its fields (with Hugging Face's defaults) that the config parsers share.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readJsonObjectFile } from "../util/utf8.js";

/** The raw config.json object; each architecture's config parser reads what it needs from it. */
export type RawConfig = Record<string, unknown> & { architectures?: string[]; model_type?: string };

/** A Hugging Face model directory: one holding config.json. */
export function isModelDirectory(dir: string): boolean {
  return existsSync(join(dir, "config.json"));
}

export function readConfig(dir: string): RawConfig {
  const file = join(dir, "config.json");
  if (!existsSync(file)) throw new Error(`${dir}: no config.json (is this a Hugging Face model directory?)`);
  return readJsonObjectFile(file) as RawConfig;
}

/** Reads a numeric field, with a default; a present field of the wrong type is an error. */
export function num(config: RawConfig, key: string, fallback?: number): number {
  const v = config[key];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new Error(`config.json: missing field ${key}`);
    return fallback;
  }
  if (typeof v !== "number") throw new Error(`config.json: field ${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

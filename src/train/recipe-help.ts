// `omni-dpo train --help`'s list of recipe keys, derived from the table (keys.ts): grouped as
// HfArgumentParser groups its dataclasses' fields, each key with its type, default, help and
// where the default comes from. Free of LibTorch, so help prints without loading the engine.
import { objectiveConfigKeys } from "../objectives/config.js";
import { ALL_KEYS, GROUPS, specOf, STATUS_TEXT, type KeySpec } from "./keys.js";

const KIND_TEXT: Record<KeySpec["kind"], string> = {
  path: "path",
  string: "string",
  enum: "",
  number: "float",
  integer: "int",
  boolean: "bool",
  steps: "int or fraction",
  mixer: "{path: fraction}",
  checkpoint: "path or bool",
  list: "list",
  mapping: "mapping",
};

/** A default as the help prints it ("default None", "default 5e-7"), or "required". */
export function formatDefault(spec: KeySpec): string {
  if (!("default" in spec)) return "required";
  return `default ${defaultText(spec.default)}`;
}

/** Python's None for unset, YAML's spelling otherwise. */
function defaultText(d: unknown): string {
  if (d === null) return "None";
  if (typeof d === "string") return d === "" ? '""' : d;
  if (typeof d === "number" || typeof d === "boolean") return String(d);
  return JSON.stringify(d);
}

function wrap(text: string, indent: string, width = 96): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines;
}

export function recipeKeysHelp(): string {
  const out: string[] = [];
  for (const group of GROUPS) {
    out.push(`${group}:`);
    for (const key of ALL_KEYS.filter((k) => specOf(k)!.group === group)) {
      const spec = specOf(key)!;
      const type = spec.kind === "enum" ? spec.values!.join(" | ") : KIND_TEXT[spec.kind];
      out.push(`  ${key} (${type}, ${formatDefault(spec)})`);
      const status = spec.status ? ` ${STATUS_TEXT[spec.status]}` : "";
      out.push(...wrap(`${spec.help}${status} [default from ${spec.follows}]`, "      "));
    }
    if (group === "objective") out.push(...objectiveKeysHelp());
    out.push("");
  }
  return out.join("\n");
}

/** The loss's own keys, from the loss registry (so a registered loss's options show too). */
function objectiveKeysHelp(): string[] {
  const out: string[] = [];
  for (const k of objectiveConfigKeys()) {
    const math = k.mathDefault === undefined ? "" : `; in a Math-style YAML ${defaultText(k.mathDefault)}`;
    out.push(`  ${k.key} (default ${defaultText(k.default)}${math})`);
    out.push(...wrap(`${k.help} [losses: ${k.losses.join(", ")}]`, "      "));
  }
  return out;
}

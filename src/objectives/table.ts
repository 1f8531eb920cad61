// The README's table of losses, written from the loss declarations (a test keeps README.md
// equal to it).
import { registeredLosses, type RegisteredLoss, type RegisteredOption } from "./registry.js";
import type { ConfigName, OptionValue } from "./spec.js";

const code = (s: string) => `\`${s}\``;

function value(v: OptionValue): string {
  if (typeof v === "number") return Number.isInteger(v) ? v.toFixed(1) : String(v);
  if (typeof v === "string") return code(v);
  return String(v);
}

function optionCell(loss: RegisteredLoss): string {
  const beta = `${code("beta")} β ${value(loss.beta.default)}${loss.beta.mathDefault !== undefined ? ` (Math ${value(loss.beta.mathDefault)})` : ""}`;
  const rest = loss.options.map((o) => {
    const head = `${code(o.name)}${o.symbol ? ` ${o.symbol}` : ""}`;
    if (o.default === null) return `${head} ${o.required ? "(required)" : "(unset)"}`;
    return `${head} ${value(o.default)}${o.mathDefault !== undefined ? ` (Math ${value(o.mathDefault)})` : ""}`;
  });
  return [beta, ...rest].join(", ");
}

/** How YAMLs name the loss: entries that differ only in their value are listed together. */
function namesOf(loss: RegisteredLoss): string {
  if (loss.config.length === 0) return loss.selectedBy ?? "(no YAML name)";
  const groups: { head: string; values: string[]; tail: string }[] = [];
  for (const c of loss.config) {
    const head =
      c.style === "textual"
        ? code("pref_loss")
        : c.style === "math"
          ? code("loss_type")
          : `${code("pref_loss")} or ${code("loss_type")}`;
    const tail = tailOf(c);
    const group = groups.find((g) => g.head === head && g.tail === tail);
    if (group) group.values.push(c.value);
    else groups.push({ head, values: [c.value], tail });
  }
  return groups.map((g) => `${g.head}: ${g.values.map(code).join(", ")}${g.tail}`).join("; ");
}

function tailOf(c: ConfigName): string {
  const when = c.when ? ` with ${c.when.text}` : "";
  const set = c.set
    ? ` (${Object.entries(c.set)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")})`
    : "";
  return when + set;
}

/**
 * An option's keys: the first, then aliases. When every option's alias is its first key under
 * another prefix (uni_dpo_x, omni_dpo_x), the aliases are said once at the end instead.
 */
function keysOf(loss: RegisteredLoss): string {
  const read = loss.options.filter((o) => o.keys.length > 0 || o.derived);
  const names = [loss.name, ...loss.aliases];
  const prefixPair = (o: RegisteredOption) => {
    if (o.keys.length !== 2) return null;
    const [a, b] = o.keys.map((k) => names.find((n) => k.startsWith(`${n}_`)));
    return a && b && o.keys[0].slice(a.length) === o.keys[1].slice(b.length) ? `${a}_ ${b}_` : null;
  };
  const pairs = new Set(read.map(prefixPair));
  const shared = pairs.size === 1 && !pairs.has(null) ? [...pairs][0]!.split(" ") : null;
  const parts = [
    code("beta"),
    ...read.map((o) => {
      const keys = shared ? o.keys.slice(0, 1) : o.keys;
      const style =
        (loss.readIn[o.name] ?? o.style) === "textual"
          ? ` (with ${code("pref_loss")})`
          : (loss.readIn[o.name] ?? o.style) === "math"
            ? ` (without ${code("pref_loss")})`
            : "";
      const own = keys.length ? keys.map(code).join(" or ") + style : "";
      const derived = o.derived ? `${own ? " or " : ""}${code(o.derived.key)} (${o.derived.text})` : "";
      return own + derived;
    }),
  ];
  return parts.join(", ") + (shared ? ` (or ${code(`${shared[1]}*`)} for ${code(`${shared[0]}*`)})` : "");
}

/** The Markdown table of the built-in losses, as the README shows it. */
export function lossTable(losses: readonly RegisteredLoss[] = registeredLosses().filter((l) => l.builtin)): string {
  const rows = losses.map((l) => {
    const equation = l.equation + (l.needsReference ? "" : "; no reference model");
    return `| ${code(l.name)} | ${equation} | ${optionCell(l)} | ${namesOf(l)}; ${keysOf(l)} |`;
  });
  return (
    [
      "| `lossType` | loss per pair | options: default (Math-style YAML default) | reference YAML keys |",
      "|---|---|---|---|",
      ...rows,
    ].join("\n") + "\n"
  );
}

// One console row per round of `omni-dpo iterate` (no engine import: the CLI prints it).
import type { RoundRow } from "./iterate.js";

export function formatRoundRow(row: RoundRow): string {
  const loss = row.train_loss === null ? "-" : row.train_loss.toFixed(4);
  const accuracy =
    row.eval && typeof row.eval.accuracy === "number" ? ` eval accuracy ${(100 * row.eval.accuracy).toFixed(1)}%` : "";
  return `round ${row.round}: ${row.pairs} pairs from ${row.prompts} prompts, ${row.train_steps} steps, train_loss ${loss}${accuracy} -> ${row.model}`;
}

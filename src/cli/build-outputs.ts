// `data build` writes its pairs, journal and summary beside --out: none of them may replace a
// file the build reads (its prompts, a model's directory, a scorer module).
import { UsageError } from "./args.js";
import { outputClash } from "../util/paths.js";

/** --out (and the journal and summary beside it) must not replace a file the build reads. */
export function refuseOverwritingInputs(values: Record<string, string | boolean | undefined>): void {
  const out = values.out as string;
  const outputs = [
    { name: "--out", path: out },
    { name: "--out's journal", path: `${out}.progress.jsonl` },
    { name: "--out's summary", path: `${out}.summary.json` },
  ];
  const inputs = (["prompts", "model", "reward-model", "scorer", "prm"] as const)
    .filter((f) => typeof values[f] === "string")
    .map((f) => ({ name: `--${f}`, path: values[f] as string }));
  const clash = outputClash(outputs, inputs);
  if (clash) {
    throw new UsageError(`data build: ${clash}; writing the pairs there would destroy it. Choose another --out`);
  }
}

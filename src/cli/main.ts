#!/usr/bin/env node
// The `omni-dpo` command line: parses arguments, calls the library, prints. Nothing else.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../util/package-root.js";
import { UsageError, type Command } from "./args.js";
import { demoCommand } from "./commands/demo.js";
import { trainCommand } from "./commands/train.js";
import { generateCommand } from "./commands/generate.js";
import { evalCommand } from "./commands/eval.js";
import { dataCommand } from "./commands/data.js";
import { benchCommand } from "./commands/bench.js";
import { mergeCommand } from "./commands/merge.js";
import { dashboardCommand } from "./commands/dashboard.js";
import { serveCommand } from "./commands/serve.js";

const HELP = `omni-dpo: preference training (Omni-DPO, DPO, SimPO, ...) for causal language models

Usage: omni-dpo <command> [options]

Commands:
  demo                 the embedded demo: DPO, SimPO and Omni-DPO on the same pairs, with a report
  train CONFIG.yaml    preference training from a reference-style YAML
  generate             generate text with a model directory (greedy or sampled)
  serve                an OpenAI-compatible server over a model directory (continuous batching)
  eval                 pairwise preference accuracy and implied rewards of a model on pairs
  dashboard RUN_DIR... a live local view of training runs (or --export report.html)
  merge                fold a LoRA adapter into its base model: a plain Hugging Face checkpoint
  data inspect FILE    counts, token lengths, truncation, score margins, duplicates of a data file
  data build           on-policy preference pairs: sample, score, binarise
  bench engine|model|train
                       engine throughput and overhead, model forward speed, or one training
                       step's speed and memory, beside PyTorch

Options:
  -h, --help           show help (also: omni-dpo <command> --help)
  -v, --version        print the version
`;

const COMMANDS: Record<string, Command> = {
  demo: demoCommand,
  train: trainCommand,
  generate: generateCommand,
  eval: evalCommand,
  data: dataCommand,
  bench: benchCommand,
  merge: mergeCommand,
  dashboard: dashboardCommand,
  serve: serveCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "-h" || command === "--help" || command === "help") {
    process.stdout.write(HELP);
    return command ? 0 : 1;
  }
  if (command === "-v" || command === "--version") {
    console.log(JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")).version);
    return 0;
  }
  const cmd = COMMANDS[command];
  if (!cmd) throw new UsageError(`unknown command '${command}'. Run omni-dpo --help for the list.`);
  if (rest.includes("-h") || rest.includes("--help")) { process.stdout.write(cmd.help); return 0; }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    console.error(`omni-dpo: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = usage ? 2 : 1;
  },
);

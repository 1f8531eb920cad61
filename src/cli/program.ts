// The command-line program: a table of commands, and the dispatcher that prints help, the
// version, or runs one. The library's own commands are listed here; an application adds its own
// (the package's `omni-dpo` bin adds the demo and the benchmarks, apps/cli.ts) without the
// library knowing of them.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../util/package-root.js";
import { UsageError, type Command } from "./args.js";
import { trainCommand, trainRmCommand } from "./commands/train.js";
import { generateCommand } from "./commands/generate.js";
import { evalCommand } from "./commands/eval.js";
import { dataCommand } from "./commands/data.js";
import { mergeCommand } from "./commands/merge.js";
import { dashboardCommand } from "./commands/dashboard.js";
import { estimateMemoryCommand } from "./commands/estimate-memory.js";
import { serveCommand } from "./commands/serve.js";
import { iterateCommand } from "./commands/iterate.js";

/** One command of the program: its name, its line(s) in the help's list, and what runs it. */
export interface ProgramCommand {
  name: string;
  /** The left column of the help's list ("train CONFIG.yaml"). */
  usage: string;
  /** The right column, one entry per line. */
  summary: readonly string[];
  command: Command;
}

export const LIBRARY_COMMANDS: readonly ProgramCommand[] = [
  {
    name: "train",
    usage: "train CONFIG.yaml",
    summary: ["preference training from a reference-style YAML"],
    command: trainCommand,
  },
  {
    name: "train-rm",
    usage: "train-rm CONFIG.yaml",
    summary: ["reward-model training (TRL's RewardTrainer) from the same YAML keys"],
    command: trainRmCommand,
  },
  {
    name: "iterate",
    usage: "iterate RECIPE.yaml",
    summary: ["rounds of on-policy sampling, scoring, training and evaluation"],
    command: iterateCommand,
  },
  {
    name: "generate",
    usage: "generate",
    summary: ["generate text with a model directory (greedy or sampled)"],
    command: generateCommand,
  },
  {
    name: "eval",
    usage: "eval",
    command: evalCommand,
    summary: ["pairwise preference accuracy and implied rewards of a model on pairs"],
  },
  {
    name: "serve",
    usage: "serve",
    summary: ["an OpenAI-compatible server over a model directory (continuous batching)"],
    command: serveCommand,
  },
  {
    name: "dashboard",
    usage: "dashboard RUN_DIR...",
    command: dashboardCommand,
    summary: ["a live local view of training runs (or --export report.html)"],
  },
  {
    name: "merge",
    usage: "merge",
    command: mergeCommand,
    summary: ["fold a LoRA adapter into its base model: a plain Hugging Face checkpoint"],
  },
  // `data` answers to two lines of the list.
  {
    name: "data",
    usage: "data inspect FILE",
    command: dataCommand,
    summary: ["counts, token lengths, truncation, score margins, duplicates of a data file"],
  },
  {
    name: "data",
    usage: "data build",
    summary: ["on-policy preference pairs: sample, score, binarise"],
    command: dataCommand,
  },
  {
    name: "estimate-memory",
    usage: "estimate-memory",
    summary: [
      "per-device memory of a training run (weights, gradients, optimizer,",
      "activations) at each zero_stage, from the model's config alone",
    ],
    command: estimateMemoryCommand,
  },
];

const USAGE_WIDTH = 21;

function helpText(commands: readonly ProgramCommand[]): string {
  const lines = commands.flatMap(({ usage, summary }) => {
    const pad = " ".repeat(2 + USAGE_WIDTH);
    if (usage.length < USAGE_WIDTH)
      return [`  ${usage.padEnd(USAGE_WIDTH)}${summary[0]}`, ...summary.slice(1).map((s) => pad + s)];
    return [`  ${usage}`, ...summary.map((s) => pad + s)];
  });
  return `omni-dpo: preference training (Omni-DPO, DPO, SimPO, ...) for causal language models

Usage: omni-dpo <command> [options]

Commands:
${lines.join("\n")}

Options:
  -h, --help           show help (also: omni-dpo <command> --help)
  -v, --version        print the version
`;
}

/** Runs one command line (`argv` without node and the script) over `commands`; resolves to the exit code. */
export async function runProgram(argv: readonly string[], commands: readonly ProgramCommand[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "-h" || name === "--help" || name === "help") {
    process.stdout.write(helpText(commands));
    return name ? 0 : 1;
  }
  if (name === "-v" || name === "--version") {
    console.log(JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")).version);
    return 0;
  }
  const cmd = commands.find((c) => c.name === name)?.command;
  if (!cmd) throw new UsageError(`unknown command '${name}'. Run omni-dpo --help for the list.`);
  if (rest.includes("-h") || rest.includes("--help")) {
    process.stdout.write((rest[0] !== undefined && cmd.subcommandHelp?.[rest[0]]) || cmd.help);
    return 0;
  }
  return cmd.run(rest);
}

/** The process's entry: runs process.argv over `commands` and sets the exit code (2 for a usage error). */
export function main(commands: readonly ProgramCommand[]): void {
  runProgram(process.argv.slice(2), commands).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
      console.error(`omni-dpo: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = usage ? 2 : 1;
    },
  );
}

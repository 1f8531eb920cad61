// `omni-dpo iterate RECIPE.yaml`: rounds of sampling, scoring, pairing, training and evaluation
// (src/train/iterate.ts), one console row per round, resumable after any interruption.
import { parseArgs } from "node:util";
import { UsageError, type Command } from "../args.js";
import { iterationKeysHelp } from "../../train/iterate-keys.js";

export const iterateCommand: Command = {
  help: `Usage: omni-dpo iterate RECIPE.yaml [--set key=value ...] [--json]

Iterative on-policy preference training: the recipe's training keys (as omni-dpo train reads
them; no training data key) plus an 'iterations' block. Each round k samples responses to fresh
prompts from round k-1's final model (round 1: model_name_or_path), scores them, pairs each
prompt's best and worst response (the graded math task: as data build --task math pairs, with
an optional prm), trains on the pairs from that model, and evaluates the result. Sampling is
local only (round k's model exists nowhere else), so an 'endpoint' key is refused.
  output_dir/round-K/pairs.jsonl (+ .summary.json, recording sampling_model), round-K/train/ (the
  run), round-K/eval.json, round-K/round.json; output_dir/iterate.json: {"rounds": [row, ...]}.
Interrupted anywhere (even kill -9), the same command continues without redoing finished work:
finished rounds are skipped, a build resumes from its journal, training from its checkpoints
(set save_steps to lose little), an evaluation from its journal. Ctrl-C or SIGTERM checkpoints
the training under way and stops.

  --set key=value   override a training key (repeatable; the value read as YAML)
  --json            print the rows as JSON ({"rounds": [...]})

Example:
  iterations:
    rounds: 3
    prompts: prompts.jsonl        # prompt (string or messages); math: + answer
    prompts_per_round: 2000
    task: text                    # text: reward_model, judge_endpoint or scorer; math: graded, or scorer
    reward_model: path/to/rm      # or judge_endpoint: URL + judge_model: NAME (an LLM judge)
    samples: 5
    reference: previous           # or initial
    eval: { task: math, data: math500.jsonl }   # or { task: winrate, prompts: FILE, reward_model: DIR }

The iterations block's keys (kind, default):
${iterationKeysHelp()}
`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { set: { type: "string", multiple: true }, json: { type: "boolean" } },
    });
    if (positionals.length !== 1) throw new UsageError("iterate: expected one RECIPE.yaml");
    const { iterate } = await import("../../train/iterate.js");
    const { formatRoundRow } = await import("../../train/iterate-format.js");
    let stop: NodeJS.Signals | null = null;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stop) process.exit(signal === "SIGINT" ? 130 : 143);
      stop = signal;
      console.error(`\n${signal}: saving a checkpoint after this step, then stopping (again to exit now)`);
    };
    const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"];
    for (const s of signals) process.on(s, onSignal);
    try {
      const result = await iterate(positionals[0], {
        set: values.set ?? [],
        shouldStop: () => stop !== null,
        onRound: values.json ? undefined : (row) => console.log(formatRoundRow(row)),
      });
      if (values.json) console.log(JSON.stringify({ rounds: result.rounds }));
      else if (result.interrupted) console.log(`stopped; the same command continues from ${result.outputDir}`);
      else console.log(`${result.rounds.length} rounds done -> ${result.outputDir}/iterate.json`);
      return result.interrupted ? (stop === "SIGINT" ? 130 : 143) : 0;
    } finally {
      for (const s of signals) process.off(s, onSignal);
    }
  },
};

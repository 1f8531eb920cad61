// `omni-dpo train` (preference training) and `omni-dpo train-rm` (reward-model training) from a
// reference-style YAML, with checkpointing on Ctrl-C, SIGTERM and SIGHUP (a closed terminal):
// one command line and launcher, two trainers.
import { parseArgs } from "node:util";
import { UsageError, type Command } from "../args.js";
import { recipeKeysHelp } from "../../train/recipe-help.js";

/** What a training command runs: `train` the preference trainer, `train-rm` the reward trainer. */
const TRAINERS = {
  train: async () => (await import("../../train/trainer.js")).train,
  "train-rm": async () => (await import("../../train/reward-trainer.js")).trainRewardModel,
} as const;
type TrainingCommandName = keyof typeof TRAINERS;

const TRAIN_WHAT = `Trains a causal LM on preference pairs with Omni-DPO or a baseline. CONFIG.yaml takes the
reference implementation's keys as they are (listed below).`;

const TRAIN_RM_WHAT = `Trains a reward model on preference pairs, as TRL's RewardTrainer: a sequence classifier with
one label (model_name_or_path: a causal LM, whose body gets a fresh score head, or a reward model)
learns -logsigmoid(r_chosen - r_rejected - margin), with the records' optional 'margin' field and
center_rewards_coefficient. Eval rows report eval_accuracy (pairwise accuracy), eval_margin and
the rewards' min/mean/max. The objective keys (beta, loss_type...) and the reference's keys are
not used. The saved model loads as AutoModelForSequenceClassification and scores in
\`omni-dpo data build --reward-model\`. CONFIG.yaml takes the same keys as \`train\` (below).`;

function trainingCommand(name: TrainingCommandName, what: string): Command {
  return {
    help: `Usage: omni-dpo ${name} CONFIG.yaml [--set key=value ...] [--json]
       omni-dpo ${name} CONFIG.yaml --nproc-per-node N [--nnodes M --node-rank K --master-addr HOST --master-port P] [--backend gloo|nccl]

${what}

Writes output_dir/metrics.jsonl as it goes, checkpoints every save_steps (or epoch) and at
the end, and the trained model with its tokenizer, trainer_state.json, train_results.json,
all_results.json and a model card README.md to output_dir, as the HF Trainer does. Ctrl-C,
SIGTERM or SIGHUP saves a checkpoint and stops, exiting 130, 143 or 129 (128 + the signal);
the next run on that output_dir resumes from it. One run at a time holds an output_dir
(output_dir/train.lock). An unknown (misspelt) key is an error.

Log-probs: TRL's DPOTrainer sums each answer's token log-probs, the Uni-DPO reference trainers
take their mean (with a mean, beta acts as beta / length). Without dpo_length_norm, a recipe of
TRL / transformers keys only is trained as TRL does (summed); one with a Uni-DPO marker
(pref_loss, uni_dpo_* or omni_dpo_* keys, loss_type: uni_dpo, the Math trainer's
train_data_path, eot_token, sanity_check, max_training_samples, or no loss key: omni_dpo) as
the reference does (mean). The run's first line says which, and why; so does the model card.

  --set key=value        override a config key (repeatable; the value is read as YAML)
  --allow-unknown-keys   ignore unknown keys with a warning instead of an error
  --json                 print the final result as JSON

Several processes (data parallelism on c10d, as torchrun): --nproc-per-node N starts N ranks on
this machine; with --nnodes M, run the same command on each machine with its --node-rank and
node 0's --master-addr (default 127.0.0.1) and --master-port (default 29500). A process started
by another launcher with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT is one rank.
per_device_train_batch_size is per rank; --backend defaults to gloo on CPU, nccl on CUDA.

Recipe keys, by group (type, default; where the default comes from):

${recipeKeysHelp()}`,
    async run(argv) {
      const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
          set: { type: "string", multiple: true },
          json: { type: "boolean" },
          "allow-unknown-keys": { type: "boolean" },
          ...LAUNCH_OPTIONS,
        },
      });
      if (positionals.length !== 1) throw new UsageError(`${name}: expected one CONFIG.yaml`);
      if (values["nproc-per-node"] !== undefined || values.nnodes !== undefined) return launchRanks(name, values, argv);
      const { loadTrainConfig, parseOverride } = await import("../../train/config.js");
      const train = await TRAINERS[name]();
      const { watchLauncher } = await import("../../train/distributed/launcher.js");
      const { ConsoleProgressCallback } = await import("../../train/callbacks/console-progress.js");
      watchLauncher();
      // In a distributed run rank 0 speaks for the run; the others print only warnings and errors.
      const rank = Number(process.env.RANK ?? 0);
      const quiet = process.env.WORLD_SIZE !== undefined && rank !== 0;
      const { config, warnings } = loadTrainConfig(positionals[0], (values.set ?? []).map(parseOverride), {
        allowUnknownKeys: values["allow-unknown-keys"] ?? false,
      });
      if (!quiet) for (const w of warnings) console.error(`warning: ${w}`);
      // Unix's convention for a process ended by a signal: 128 + its number.
      const exitCodes: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };
      let stopRequested: NodeJS.Signals | null = null;
      const onSignal = (signal: NodeJS.Signals) => {
        if (signal === "SIGHUP") {
          // The terminal is gone: writing to it fails, and the failure must not end the run before its checkpoint.
          for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});
        }
        if (stopRequested) {
          console.error(`\n${signal} again: exiting without a checkpoint`);
          process.exit(exitCodes[signal]);
        }
        stopRequested = signal;
        console.error(`\n${signal}: saving a checkpoint after this step, then stopping (again to exit now)`);
      };
      const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
      for (const s of signals) process.on(s, onSignal);
      try {
        const shouldStop = () => stopRequested !== null;
        const result = await train(
          config,
          quiet
            ? { onWarning: (m) => console.error(`warning: rank ${rank}: ${m}`), shouldStop }
            : {
                onStatus: (m) => console.error(m),
                onWarning: (m) => console.error(`warning: ${m}`),
                callbacks: [new ConsoleProgressCallback(!values.json)],
                shouldStop,
              },
        );
        if (quiet) return result.interrupted ? exitCodes[stopRequested ?? "SIGINT"]! : 0;
        if (values.json) console.log(JSON.stringify(result));
        else if (result.alreadyFinished)
          console.log(
            `${result.outputDir} already holds the finished run (step ${result.globalStep}/${result.totalSteps}); nothing to train`,
          );
        else if (result.interrupted)
          console.log(`stopped at step ${result.globalStep}/${result.totalSteps}; checkpoint ${result.checkpoint}`);
        else console.log(`trained ${result.globalStep} steps; model saved to ${result.outputDir}`);
        // Stopped by a signal, after its checkpoint: the signal's code (a run that finished anyway exits 0).
        return result.interrupted && stopRequested ? exitCodes[stopRequested]! : 0;
      } finally {
        for (const s of signals) process.off(s, onSignal);
      }
    },
  };
}

export const trainCommand = trainingCommand("train", TRAIN_WHAT);
export const trainRmCommand = trainingCommand("train-rm", TRAIN_RM_WHAT);

const LAUNCH_OPTIONS = {
  "nproc-per-node": { type: "string" },
  nnodes: { type: "string" },
  "node-rank": { type: "string" },
  "master-addr": { type: "string" },
  "master-port": { type: "string" },
  backend: { type: "string" },
} as const;

/** --nproc-per-node / --nnodes: this process is the launcher; each rank runs this command without those flags. */
async function launchRanks(
  name: TrainingCommandName,
  values: Record<string, unknown>,
  argv: string[],
): Promise<number> {
  const { launch } = await import("../../train/distributed/launcher.js");
  const { BACKENDS } = await import("../../torch/distributed.js");
  const int = (flag: string, fallback: number) => {
    const text = values[flag] as string | undefined;
    if (text === undefined) return fallback;
    if (!/^\d+$/.test(text)) throw new UsageError(`${name}: --${flag} must be a whole number, not '${text}'`);
    return Number(text);
  };
  const backend = (values.backend as string | undefined) ?? null;
  if (backend !== null && !(BACKENDS as readonly string[]).includes(backend))
    throw new UsageError(`${name}: --backend must be one of ${BACKENDS.join(", ")}, not '${backend}'`);
  const forwarded: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [name] = argv[i].replace(/^--/, "").split("=");
    if (argv[i].startsWith("--") && name in LAUNCH_OPTIONS) {
      if (!argv[i].includes("=")) i++;
      continue;
    }
    forwarded.push(argv[i]);
  }
  try {
    return await launch({
      script: process.argv[1],
      args: [name, ...forwarded],
      nprocPerNode: int("nproc-per-node", 1),
      nnodes: int("nnodes", 1),
      nodeRank: int("node-rank", 0),
      masterAddr: (values["master-addr"] as string | undefined) ?? "127.0.0.1",
      masterPort: int("master-port", 29500),
      backend: backend as "gloo" | "nccl" | null,
    });
  } catch (e) {
    throw new UsageError(`${name}: ${(e as Error).message}`);
  }
}

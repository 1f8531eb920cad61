// `omni-dpo demo`: the paper's two pipelines in miniature, and `demo sft` to remake its checkpoint.
import { parseArgs } from "node:util";
import { UsageError, positiveInt, nonNegative, type Command } from "../../src/cli/args.js";

export const demoCommand: Command = {
  help: `Usage: omni-dpo demo [--pipeline math|text|rm|all] [--quick] [--seed N] [--train-seeds N] [--pair-seeds N]
                     [--prompts N] [--val N] [--heldout N] [--ablations] [--jobs N] [--judge-noise S]
                     [--rm-eta E] [--rm-scale raw|std|z] [--text-scale raw|std|z] [--out DIR] [--json]
       omni-dpo demo sft --out DIR [--save-at-step N]
       omni-dpo demo rm --out DIR

Preference learning tested in miniature, on this machine. A small Llama-style model (SFT on
worked arithmetic solutions, shipped in assets/arith-sft) samples answers to new problems; a
verifier and a noisy process judge score them; the math pipeline (verifier + judge) and the
text pipeline (the judge alone, best vs worst) turn them into pairs; the rm pipeline has a small
reward model (train-rm's trainer, on judge-labelled pairs of prompts no other stage sees;
shipped in assets/arith-rm) score the same samples and pairs them best vs worst by it. RFT
(SFT on the chosen
answers), DPO, SimPO and Omni-DPO train from the same start, each at the learning rate its
validation accuracy picks, over training seeds x pair-building seeds, and again at 2x and 4x
DPO's learning rate. Held-out greedy accuracy decides; differences are paired, with 95%
intervals. Prints a summary and writes DIR/report.html and DIR/results.json.

  --pipeline P      math, text, rm or all (default all; "both" is its old name)
  --quick           fewer problems and seeds, same design (under 3 minutes on 2 idle cores;
                    the default takes about 9.5)
  --seed N          base seed: problem sets, first training and pair seed (default 0)
  --train-seeds N   training seeds per method (default 2; quick 1)
  --pair-seeds N    pair-building seeds (default 3; quick 2)
  --prompts N       prompts sampled for pairs (default 1024; quick 384)
  --val N           validation problems, for the learning rate (default 300; quick 200)
  --heldout N       held-out problems, for the result (default 600; quick 400)
  --ablations       also train Omni-DPO without each of w_qual, w_perf and c-NLL
  --jobs N          worker processes (default: one per core)
  --judge-noise S   the process judge's noise, in score points (default 1.5)
  --rm-eta E        the rm pipeline's Omni-DPO η (default 1: on raw scores, w_qual is the
                    reward model's own probability that the label is right)
  --rm-scale S      the reward model's scores as w_qual reads them: raw (default), std (gaps
                    divided by their standard deviation) or z (the reference's normalised margin)
  --text-scale S    the same for the judge's scores in the text pipeline (default raw)
  --out DIR         where runs and the report go (default ./omni-dpo-demo)
  --json            print one JSON object with the results

demo sft --out DIR  retrains the shipped SFT checkpoint with its recipe; --save-at-step N
                    takes it at step N of the recipe's schedule (default: the recipe's)
demo rm --out DIR   retrains the shipped reward model with its recipe (rm_recipe.json)
`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        pipeline: { type: "string" },
        quick: { type: "boolean" },
        seed: { type: "string" },
        "train-seeds": { type: "string" },
        "pair-seeds": { type: "string" },
        ablations: { type: "boolean" },
        jobs: { type: "string" },
        "judge-noise": { type: "string" },
        out: { type: "string" },
        json: { type: "boolean" },
        "save-at-step": { type: "string" },
        prompts: { type: "string" },
        val: { type: "string" },
        heldout: { type: "string" },
        "rm-eta": { type: "string" },
        "rm-scale": { type: "string" },
        "text-scale": { type: "string" },
      },
    });
    const demo = await import("./arith.js");
    const { Progress } = await import("../../src/util/progress.js");
    if (positionals[0] === "sft") {
      if (!values.out) throw new UsageError("demo sft: --out DIR is required");
      const steps = demo.SFT_RECIPE.steps;
      const at = positiveInt(values["save-at-step"], "--save-at-step", demo.SFT_RECIPE.saveAtStep);
      if (at > steps) throw new UsageError(`demo sft: --save-at-step ${at} is past the schedule's ${steps} steps`);
      let bar: InstanceType<typeof Progress> | null = null;
      const r = demo.trainSftModel(
        values.out,
        (s, t, loss) => (bar ??= new Progress("SFT", t)).update(s, `loss ${loss.toFixed(4)}`),
        at,
      );
      console.log(
        `SFT model saved to ${values.out} (step ${at} of ${steps}, ${r.seconds.toFixed(0)} s, final loss ${r.finalLoss.toFixed(4)})`,
      );
      return 0;
    }
    if (positionals[0] === "rm") {
      if (!values.out) throw new UsageError("demo rm: --out DIR is required");
      const r = await demo.remakeRewardModel(values.out);
      console.log(
        `reward model saved to ${values.out} (${r.trainPairs} training pairs, ${r.heldoutPairs} held out, ${r.trainSeconds.toFixed(0)} s)`,
      );
      return 0;
    }
    if (positionals.length) throw new UsageError(`demo: unknown argument '${positionals[0]}'`);
    const pipeline = values.pipeline ?? "all";
    if (!["math", "text", "rm", "all", "both"].includes(pipeline))
      throw new UsageError(`demo: --pipeline must be math, text, rm or all, got '${pipeline}'`);
    const { SCORE_SCALES } = await import("./pipelines.js");
    const scale = (flag: "rm-scale" | "text-scale") => {
      const value = values[flag] ?? "raw";
      const known = SCORE_SCALES.find((s) => s === value);
      if (!known) throw new UsageError(`demo: --${flag} must be raw, std or z, got '${value}'`);
      return known;
    };
    const { demoSummary, writeDemoReport, demoJson } = await import("./report.js");
    let bar: InstanceType<typeof Progress> | null = null;
    const result = await demo.runDemo({
      pipeline: pipeline as "math" | "text" | "rm" | "all",
      rmEta: values["rm-eta"] ? nonNegative(values["rm-eta"], "--rm-eta", demo.RM_ETA) : undefined,
      rmScale: scale("rm-scale"),
      textScale: scale("text-scale"),
      quick: values.quick,
      seed: positiveInt(values.seed, "--seed", 0, true),
      trainSeeds: values["train-seeds"] ? positiveInt(values["train-seeds"], "--train-seeds", 1) : undefined,
      pairSeeds: values["pair-seeds"] ? positiveInt(values["pair-seeds"], "--pair-seeds", 1) : undefined,
      jobs: values.jobs ? positiveInt(values.jobs, "--jobs", 1) : undefined,
      sizes: {
        ...(values.prompts ? { train: positiveInt(values.prompts, "--prompts", 1) } : {}),
        ...(values.val ? { val: positiveInt(values.val, "--val", 1) } : {}),
        ...(values.heldout ? { test: positiveInt(values.heldout, "--heldout", 1) } : {}),
      },
      ablations: values.ablations,
      judgeNoise: values["judge-noise"] ? nonNegative(values["judge-noise"], "--judge-noise", 1.5) : undefined,
      outDir: values.out ?? "omni-dpo-demo",
      onStatus: (m) => {
        if (!values.json) console.error(m);
      },
      onProgress: (label, done, total) => {
        if (!values.json) (bar ??= new Progress(label, total)).update(done);
      },
    });
    const files = writeDemoReport(result);
    if (values.json) {
      console.log(JSON.stringify(demoJson(result)));
      return 0;
    }
    console.log(`\n${demoSummary(result)}\n`);
    console.log(`report: ${files.html}\nresults: ${files.json}\nwall time: ${result.wall_seconds.toFixed(0)} s`);
    return 0;
  },
};

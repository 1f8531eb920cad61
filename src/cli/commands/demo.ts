// `omni-dpo demo`: the math pipeline in miniature, and `demo sft` to remake its checkpoint.
import { parseArgs } from "node:util";
import { UsageError, positiveInt, nonNegative, type Command } from "../args.js";

export const demoCommand: Command = {
  help: `Usage: omni-dpo demo [--quick] [--seed N] [--seeds N] [--ablations] [--out DIR] [--json]
       omni-dpo demo sft --out DIR

The paper's math pipeline in miniature, on this machine: a small Llama-style model (SFT on
worked arithmetic solutions, shipped in assets/arith-sft) samples answers to new problems; a
verifier and a noisy process judge score them; pairs are built as the reference builds them;
DPO, SimPO and Omni-DPO train from the same start on the same pairs over several seeds, with
hyperparameters chosen on a validation split; held-out accuracy decides. Prints a table and
writes DIR/report.html (curves, accuracy, the w_qual/w_perf view) and DIR/results.json.

  --quick           smaller sets, 2 seeds, no tuning (about 1-3 minutes)
  --seed N          base seed (default 0)
  --seeds N         training seeds per method (default 3; quick 2)
  --ablations       also train Omni-DPO without each of w_qual, w_perf and c-NLL
  --no-tune         skip the validation grid (use the built-in choice)
  --judge-noise S   the process judge's noise, in score points (default 1.5)
  --out DIR         where runs and the report go (default ./omni-dpo-demo)
  --json            print one JSON object with the results

demo sft --out DIR  retrains the shipped SFT checkpoint with its recipe
`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
      quick: { type: "boolean" }, seed: { type: "string" }, seeds: { type: "string" }, ablations: { type: "boolean" },
      "no-tune": { type: "boolean" }, "judge-noise": { type: "string" }, out: { type: "string" }, json: { type: "boolean" },
    } });
    const demo = await import("../../demo/arith.js");
    const { Progress } = await import("../progress.js");
    if (positionals[0] === "sft") {
      if (!values.out) throw new UsageError("demo sft: --out DIR is required");
      let bar: InstanceType<typeof Progress> | null = null;
      const r = demo.trainSftModel(values.out, (s, t, loss) => (bar ??= new Progress("SFT", t)).update(s, `loss ${loss.toFixed(4)}`));
      console.log(`SFT model saved to ${values.out} (${r.seconds.toFixed(0)} s, final loss ${r.finalLoss.toFixed(4)})`);
      return 0;
    }
    if (positionals.length) throw new UsageError(`demo: unknown argument '${positionals[0]}'`);
    const { demoTable, writeDemoReport, demoJson } = await import("../../report/demo-report.js");
    const bars = new Map<string, InstanceType<typeof Progress>>();
    const result = await demo.runDemo({
      quick: values.quick, seed: positiveInt(values.seed, "--seed", 0, true), seeds: values.seeds ? positiveInt(values.seeds, "--seeds", 3) : undefined,
      ablations: values.ablations, tune: values["no-tune"] ? false : undefined, judgeNoise: values["judge-noise"] ? nonNegative(values["judge-noise"], "--judge-noise", 1.5) : undefined,
      outDir: values.out ?? "omni-dpo-demo",
      onStatus: (m) => { if (!values.json) console.error(m); },
      onProgress: (label, done, total) => {
        if (values.json) return;
        let bar = bars.get(label);
        if (!bar) bars.set(label, (bar = new Progress(label, total)));
        bar.update(done);
      },
    });
    const files = writeDemoReport(result);
    if (values.json) { console.log(JSON.stringify(demoJson(result))); return 0; }
    console.log(`\n${demoTable(result)}\n`);
    console.log(`report: ${files.html}\nresults: ${files.json}\nwall time: ${result.wall_seconds.toFixed(0)} s`);
    return 0;
  },
};

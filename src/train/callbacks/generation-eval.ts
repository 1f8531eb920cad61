// Generation eval during training: at eval_generation_steps (default eval_steps) and at the end,
// the current policy answers eval_generation_file's prompts greedily, and they are graded exactly
// as `omni-dpo eval` would grade that step's checkpoint: math, by the math grader
// (eval_gen_accuracy, eval_gen_mean_length in tokens); winrate, by a reward model against the
// starting model's answers, generated once (eval_gen_win_rate, eval_gen_mean_length in
// characters). The loop combines the ranks' shares (each rank answers every worldSize-th prompt)
// and logs the figures on the step's eval row, so metric_for_best_model can name them.
import type { CausalLM } from "../../models/causal-lm.js";
import { tokenizerDirectory } from "../../models/peft.js";
import { Tokenizer } from "../../text/index.js";
import { readPromptRows, type PromptRow } from "../../data/readers.js";
import type { WinRateJudge } from "../../eval/winrate/judges.js";
import { loadModel } from "../../models/auto.js";
import { answersOf, rewardJudge, winRate } from "../winrate-eval.js";
import { datasetOfFile, evaluateMathBenchmark, readBenchmark } from "../../eval/math/benchmark.js";
import type { TrainConfig } from "../config.js";
import { resolveSteps } from "../steps.js";
import type { EvaluationSums, TrainerCallback, TrainerEvent } from "./callback.js";

export class GenerationEvalCallback implements TrainerCallback {
  #tokenizer: Tokenizer | null = null;
  #count: number | null = null;

  constructor(readonly file: string) {}

  /** The callback a config asks for (eval_generation_file), or null. */
  static fromConfig(config: TrainConfig): GenerationEvalCallback | null {
    return config.evalGenerationFile === null ? null : new GenerationEvalCallback(config.evalGenerationFile);
  }

  /** Whether this step is a generation-eval step: every eval_generation_steps (or eval_steps), and the last. */
  static due(config: TrainConfig, step: number, maxSteps: number): boolean {
    const every = resolveSteps(config.evalGenerationSteps ?? config.evalSteps, maxSteps);
    return step >= maxSteps || (every !== null && step % every === 0);
  }

  async evaluationSums(event: TrainerEvent): Promise<EvaluationSums | null> {
    const { state, config } = event;
    if (!GenerationEvalCallback.due(config, state.globalStep, state.maxSteps)) return null;
    this.#tokenizer ??= Tokenizer.fromPretrainedSync(tokenizerDirectory(config.modelNameOrPath));
    return config.evalGenerationTask === "winrate" ? this.#winRate(event) : this.#math(event);
  }

  /** This rank's share of the first `count` prompts: rank, rank + worldSize, ... */
  static share(count: number, rank: number, worldSize: number): number[] {
    return Array.from({ length: count }, (_, i) => i).filter((i) => i % worldSize === rank);
  }

  async #math({ state, model, config }: TrainerEvent): Promise<EvaluationSums> {
    const dataset = datasetOfFile(this.file) ?? "math";
    this.#count ??= (await readBenchmark(this.file, dataset)).length;
    const count = Math.min(this.#count, config.evalGenerationSamples ?? Infinity);
    const mine = GenerationEvalCallback.share(count, state.rank, state.worldSize);
    const policy = model as CausalLM;
    const wasTraining = policy.training;
    policy.eval();
    try {
      const { problems } = await evaluateMathBenchmark(policy, this.#tokenizer!, this.file, {
        dataset,
        maxNewTokens: config.evalGenerationMaxNewTokens,
        promptTemplate: config.evalGenerationPromptTemplate ?? undefined,
        batchSize: config.evalGenerationBatchSize,
        only: mine,
      });
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      return {
        n: problems.length,
        sums: {
          gen_accuracy: problems.reduce((s, p) => s + mean(p.correct.map(Number)), 0),
          gen_mean_length: problems.reduce((s, p) => s + mean(p.tokens), 0),
        },
      };
    } finally {
      policy.train(wasTraining);
    }
  }

  #prompts: PromptRow[] | null = null;
  #baseline: string[] | null = null;
  #judge: WinRateJudge | null = null;

  /** The win rate of this rank's prompts against the starting model's answers (generated at the first evaluation). */
  async #winRate({ state, model, config }: TrainerEvent): Promise<EvaluationSums> {
    const all = (this.#prompts ??= readPromptRows(this.file));
    const mine = GenerationEvalCallback.share(
      Math.min(all.length, config.evalGenerationSamples ?? Infinity),
      state.rank,
      state.worldSize,
    );
    const prompts = mine.map((i) => all[i]);
    const settings = { maxNewTokens: config.evalGenerationMaxNewTokens, batchSize: config.evalGenerationBatchSize };
    const policy = model as CausalLM;
    if (!this.#baseline) {
      // The starting weights, loaded beside the policy once: a resumed run's policy has moved on.
      const start = loadModel(config.modelNameOrPath, { device: policy.device });
      try {
        this.#baseline = await answersOf(start, this.#tokenizer!, config.modelNameOrPath, prompts, settings);
      } finally {
        start.dispose();
      }
    }
    const wasTraining = policy.training;
    policy.eval();
    let answers: string[];
    try {
      answers = await answersOf(policy, this.#tokenizer!, "policy", prompts, settings);
    } finally {
      policy.train(wasTraining);
    }
    this.#judge ??= rewardJudge(config.evalGenerationRewardModel!, policy.device, settings.batchSize);
    if (prompts.length === 0) return { n: 0, sums: { gen_win_rate: 0, gen_mean_length: 0 } };
    const report = await winRate(prompts, answers, this.#baseline, this.#judge, settings.batchSize);
    return {
      n: report.records.length,
      sums: {
        gen_win_rate: report.records.reduce((s, r) => s + (r.preference ?? 0.5), 0),
        gen_mean_length: report.records.reduce((s, r) => s + r.length, 0),
      },
    };
  }

  close(): void {
    this.#judge?.dispose?.();
    this.#judge = null;
  }
}

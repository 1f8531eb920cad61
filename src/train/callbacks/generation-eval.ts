// Generation eval during training: at eval_generation_steps (default eval_steps) and at the end,
// the current policy answers eval_generation_file's problems greedily and the math grader marks
// them, exactly as `omni-dpo eval --task math` would on that step's checkpoint. The loop combines
// the ranks' shares (each rank answers every worldSize-th problem) and logs eval_gen_accuracy and
// eval_gen_mean_length on the step's eval row, so metric_for_best_model can name them.
import type { CausalLM } from "../../models/causal-lm.js";
import { tokenizerDirectory } from "../../models/peft.js";
import { Tokenizer } from "../../text/index.js";
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

  async evaluationSums({ state, model, config }: TrainerEvent): Promise<EvaluationSums | null> {
    if (!GenerationEvalCallback.due(config, state.globalStep, state.maxSteps)) return null;
    const dataset = datasetOfFile(this.file) ?? "math";
    this.#tokenizer ??= Tokenizer.fromPretrainedSync(tokenizerDirectory(config.modelNameOrPath));
    this.#count ??= (await readBenchmark(this.file, dataset)).length;
    const count = Math.min(this.#count, config.evalGenerationSamples ?? Infinity);
    // This rank's share: problems rank, rank + worldSize, ...
    const mine = Array.from({ length: count }, (_, i) => i).filter((i) => i % state.worldSize === state.rank);
    const policy = model as CausalLM;
    const wasTraining = policy.training;
    policy.eval();
    try {
      const { problems } = await evaluateMathBenchmark(policy, this.#tokenizer, this.file, {
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
}

// Win rate against a baseline's answers, judged by a reward model, as `omni-dpo eval --task
// winrate --reward-model` computes it (greedy answers, the same batching): what iterate's
// per-round evaluation and the generation-eval callback report for eval task winrate.
import type { PromptRow } from "../data/readers.js";
import { evaluateWinRate, type WinRateReport } from "../eval/winrate/evaluate.js";
import { generateAnswers } from "../eval/winrate/answers.js";
import { rewardModelJudge, type WinRateJudge } from "../eval/winrate/judges.js";
import { LocalGenerator } from "../generation/local.js";
import type { CausalLM } from "../models/causal-lm.js";
import { loadSequenceClassifier } from "../models/sequence-classification.js";
import { Tokenizer } from "../text/index.js";
import type { Device } from "../torch/index.js";

export interface AnswerSettings {
  maxNewTokens: number;
  batchSize: number;
}

/** A model's greedy answers to the prompts (the model is left loaded: the caller owns it). */
export function answersOf(
  model: CausalLM,
  tokenizer: Tokenizer,
  name: string,
  prompts: PromptRow[],
  settings: AnswerSettings,
): Promise<string[]> {
  return generateAnswers(new LocalGenerator(model, tokenizer, name), prompts, {
    ...settings,
    chat: tokenizer.chatTemplate !== undefined,
    side: "model",
  });
}

/** The reward model in `dir` as a win-rate judge (dispose() frees it). */
export function rewardJudge(dir: string, device: Device | undefined, batchSize: number): WinRateJudge {
  const model = loadSequenceClassifier(dir, { device });
  try {
    const judge = rewardModelJudge(model, Tokenizer.fromPretrainedSync(dir), { dir, batchSize });
    return Object.assign(judge, { dispose: () => model.dispose() });
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The answers judged against the baseline's (ties half), with eval --task winrate's defaults. */
export function winRate(
  prompts: PromptRow[],
  answers: string[],
  baselineAnswers: string[],
  judge: WinRateJudge,
  batchSize: number,
): Promise<WinRateReport> {
  return evaluateWinRate({ prompts, answers, baselineAnswers, judge, batchSize });
}

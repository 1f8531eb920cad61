// Win rate against a baseline, judged by a reward model or an LLM (`omni-dpo eval --task winrate`).
export {
  evaluateWinRate,
  formatWinRate,
  winRateSummary,
  type WinRateMode,
  type WinRateOptions,
  type WinRateRecord,
  type WinRateReport,
  type Winner,
} from "./evaluate.js";
export {
  DEFAULT_PAIRWISE_TEMPLATE,
  combineOrders,
  llmPairwiseJudge,
  pairwisePrompt,
  parsePairwiseVerdict,
  readPairwiseTemplate,
  rewardModelJudge,
  type AnswerPair,
  type LlmPairwiseJudgeOptions,
  type PairJudgement,
  type RewardModelJudgeOptions,
  type Verdict,
  type WinRateJudge,
} from "./judges.js";
export { generateAnswers, readBaselineAnswers, requestPrompt, type AnswerOptions } from "./answers.js";
export { WinRateJournal, identityHash } from "./journal.js";
export { bootstrapCI, lengthControlledWinRate, type LengthFit } from "./stats.js";

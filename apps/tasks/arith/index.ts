// The embedded arithmetic task: problems and prompts, worked and corrupted solutions, the
// verifier (final answer right?), the noisy process judge (0..10 from the steps) and the
// character-level tokenizer. Text formats:
//   prompt    "Q:47+85="
//   solution  " 7+5+0=12 4+8+1=13 A=132."   (column steps, final answer "A=", terminator ".")
export {
  ARITH_OPS,
  DIFFICULTIES,
  MAX_OPERAND_DIGITS,
  applyOp,
  digitCount,
  drawProblem,
  formatPrompt,
  generateProblems,
  makeProblem,
  parsePrompt,
  resolveDifficulty,
  type ArithOp,
  type ArithProblem,
  type Difficulty,
  type DifficultyName,
  type DigitRange,
  type GenerateOptions,
  type OpSpec,
} from "./problems.js";
export {
  ANSWER_MARKER,
  PARTIAL_MARKER,
  TERMINATOR,
  formatStep,
  formatSteps,
  parseResponse,
  parseStep,
  stepsEqual,
  type ParsedResponse,
  type Step,
  type StepKind,
} from "./steps.js";
export { digitsOf, walkMethod, type MethodWalk, type Role, type StepChooser } from "./method.js";
export {
  DEFAULT_CORRUPTIONS,
  corruptSolution,
  solutionSteps,
  trainingText,
  workedSolution,
  type CorruptOptions,
  type CorruptedSolution,
  type CorruptionKind,
} from "./solutions.js";
export { extractAnswer, verify } from "./verifier.js";
export {
  judgeResponse,
  processJudge,
  type JudgeOptions,
  type JudgeReport,
  type StepAggregate,
  type StepCredit,
} from "./judge.js";
export {
  ARITH_ALPHABET,
  ARITH_SPECIAL_TOKENS,
  arithTokenizer,
  arithTokenizerFiles,
  writeArithTokenizer,
} from "./tokenizer.js";
export { gaussian, hashSeed, randomInt, seededRandom, type Random } from "./random.js";
export { arithScorer, type ArithScore } from "./scorer.js";

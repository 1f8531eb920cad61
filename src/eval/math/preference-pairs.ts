// Math preference data from real problems, as the reference's Math/data_generation pipeline:
// gen_samples.py (K samples per problem from the policy, temperature 1.0, top-p 0.8, outputs past
// the truncation length dropped), verifiable_reward_labeling.py (each response graded against the
// gold answer by the evaluation harness's rules; responses without an answer dropped; problems
// with no correct response dropped), progress_reward_labeling.py (a process reward model's score
// at every step, steps split on blank lines; each response's min and mean step score) and
// get_uni_dpo_data.py (chosen: a correct response above 6 on the 0..10 scale; rejected: as its
// strategy says, at least the score margin below; the margin relaxed by 0.5 when too few pairs).
// The work is journaled problem by problem, so a build that is killed continues where it stopped.
import { createHash } from "node:crypto";
import type { CausalLM } from "../../models/causal-lm.js";
import type { ProcessRewardModel } from "../../models/process-reward.js";
import type { Tokenizer } from "../../text/index.js";
import { asGenerator } from "../../generation/local.js";
import type { Generator } from "../../generation/types.js";
import { openRecordJournal } from "../../data/journal.js";
import { mulberry32 } from "../../util/random.js";
import { gradeAgainstGold, recordFor } from "./grade.js";
import { goldAnswer } from "./ground-truth.js";
import { cutAtStopWords, STOP_WORDS } from "./extract.js";
import { readLines } from "../../data/lines.js";
import { DataError } from "../../data/records.js";

/** The system prompt of the reference's sampling and PRM labelling. */
export const MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}.";
/** What gen_samples.py appends to each problem. */
export const MATH_SUFFIX = " Let's think step by step and output the final answer within \\boxed{}";

export interface MathProblem {
  problem: string;
  answer: string;
  at: string;
}

/** One problem's labelled responses, as the journal keeps them. */
export interface LabelledProblem {
  i: number;
  prompt: string;
  responses: string[];
  correct: boolean[];
  pred: string[];
  min_rewards: number[];
  avg_rewards: number[];
  /** Why the problem yields nothing, when it does not. */
  dropped?: "all_truncated" | "no_answer" | "all_wrong";
}

export interface MathPair {
  prompt: string;
  chosen: string;
  rejected: string;
  score_chosen: number;
  score_rejected: number;
  score_margin: number;
  score_margin_normalized?: number;
  correct_chosen: boolean;
  correct_rejected: boolean;
}

export interface BinarizeOptions {
  /** min (default) or avg step score, the reference's REWARD_TYPE. */
  rewardType?: "min" | "avg";
  posStrategy?: "max" | "rand";
  negStrategy?: "min" | "rand" | "positive";
  /** Least score difference chosen - rejected on the 0..10 scale (default 0, generate_data.sh's). */
  scoreMargin?: number;
  /** At most this many pairs (default 10000). */
  maxPairs?: number;
  seed?: number;
}

/** How many passes over the data before the margin is relaxed (the reference's TRY_MAX_CNT + 1). */
const PASSES = 201;

/**
 * get_uni_dpo_data.py's construct_dataset: passes over the problems, each pass taking at most one
 * pair per problem and removing its two responses, until maxPairs or 201 passes; then the margin
 * drops by 0.5 and it goes on, until the margin reaches 0. Scores at most 1.1 are scaled by 10.
 * Random choices come from a seeded generator (not Python's, so "rand" picks differ from the
 * reference's own runs).
 */
export function binarizeUniDpo(items: LabelledProblem[], options: BinarizeOptions = {}): MathPair[] {
  const rewardKey = (options.rewardType ?? "min") === "min" ? "min_rewards" : "avg_rewards";
  const pos = options.posStrategy ?? "max";
  const neg = options.negStrategy ?? "positive";
  const maxPairs = options.maxPairs ?? 10000;
  const random = mulberry32(options.seed ?? 42);
  const choice = (xs: number[]) => xs[Math.floor(random() * xs.length)];
  // the reference deletes used responses from its items: work on copies
  const pool = items
    .filter((it) => !it.dropped)
    .map((it) => ({
      prompt: it.prompt,
      responses: [...it.responses],
      correct: [...it.correct],
      rewards: [...it[rewardKey]],
    }));
  const pairs: MathPair[] = [];
  let margin = options.scoreMargin ?? 0;
  for (;;) {
    for (let pass = 0; pass < PASSES && pairs.length < maxPairs; pass++) {
      for (const item of pool) {
        if (item.responses.length === 0 || item.rewards.length === 0) continue;
        const rewards = Math.max(...item.rewards) <= 1.1 ? item.rewards.map((r) => r * 10) : item.rewards;
        const valid = item.correct.flatMap((c, i) => (c && rewards[i] > 6 ? [i] : []));
        if (valid.length === 0) continue;
        // max: the first highest, as Python's max()
        const chosen = pos === "max" ? valid.reduce((b, i) => (rewards[i] > rewards[b] ? i : b)) : choice(valid);
        const bar = rewards[chosen] - margin;
        const wrongLow = item.correct.flatMap((c, i) => (!c && rewards[i] <= bar ? [i] : []));
        let rejected: number | undefined;
        if (neg === "min")
          rejected = wrongLow.length ? wrongLow.reduce((b, i) => (rewards[i] < rewards[b] ? i : b)) : undefined;
        else if (neg === "rand") rejected = wrongLow.length ? choice(wrongLow) : undefined;
        else {
          // "positive": a low-scoring correct response first, else a low-scoring wrong one
          const rightLow = item.correct.flatMap((c, i) => (c && rewards[i] <= bar ? [i] : []));
          rejected = rightLow.length ? choice(rightLow) : wrongLow.length ? choice(wrongLow) : undefined;
        }
        if (rejected === undefined || rewards[chosen] < rewards[rejected]) continue;
        pairs.push({
          prompt: item.prompt,
          chosen: item.responses[chosen],
          rejected: item.responses[rejected],
          score_chosen: rewards[chosen],
          score_rejected: rewards[rejected],
          score_margin: rewards[chosen] - rewards[rejected],
          correct_chosen: item.correct[chosen],
          correct_rejected: item.correct[rejected],
        });
        for (const i of [chosen, rejected].sort((a, b) => b - a)) {
          item.responses.splice(i, 1);
          item.correct.splice(i, 1);
          item.rewards.splice(i, 1);
        }
        if (pairs.length >= maxPairs) return pairs;
      }
    }
    margin -= 0.5;
    if (margin <= 0) return pairs;
  }
}

/** normalize_score_margin: (margin - mean) / (population std + 1e-6). */
export function normalizeScoreMargins(pairs: MathPair[]): void {
  if (pairs.length === 0) return;
  const mean = pairs.reduce((s, p) => s + p.score_margin, 0) / pairs.length;
  const std = Math.sqrt(pairs.reduce((s, p) => s + (p.score_margin - mean) ** 2, 0) / pairs.length) + 1e-6;
  for (const p of pairs) p.score_margin_normalized = (p.score_margin - mean) / std;
}

/** The chat-formatted text of a conversation, or Qwen's chat markup where the tokenizer has no template. */
function chatText(tokenizer: Tokenizer, messages: { role: string; content: string }[], generation: boolean): string {
  if (tokenizer.chatTemplate) {
    return tokenizer.applyChatTemplate(messages as never, { addGenerationPrompt: generation });
  }
  return (
    messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join("") +
    (generation ? "<|im_start|>assistant\n" : "")
  );
}

export interface MathBuildOptions {
  samples?: number; // K, default 8
  temperature?: number; // default 1.0 (generate_data.sh)
  topP?: number; // default 0.8 (gen_samples.py)
  maxNewTokens?: number; // default 4096, never past the policy's context
  /** Prompt + response tokens above this drop the response (default 4000; 0: keep all). */
  truncateLength?: number;
  /** Text with {input} for the problem instead of the policy's chat template with the reference's system prompt. */
  promptTemplate?: string;
  /** The PRM's step separator (default "<extra_0>"), one token of its tokenizer. */
  stepToken?: string;
  batchSize?: number; // problems per generation batch, default 4
  seed?: number;
  journal: string;
  identity?: Record<string, unknown>;
  onProgress?: (done: number, total: number) => void;
}

export interface MathBuildSummary {
  problems: number;
  resumed: number;
  labelled: number;
  dropped: Record<string, number>;
  responses: number;
  responses_truncated: number;
  responses_without_answer: number;
  correct_rate: number;
}

const rowSeed = (seed: number, i: number, j: number): number =>
  createHash("sha256").update(`math:${seed}:${i}:${j}`).digest().readUInt32LE(0);

/** Samples, grades and PRM-labels every problem (journaled); returns the labelled problems in input order. */
export async function labelMathProblems(
  sampler: CausalLM | Generator,
  tokenizer: Tokenizer,
  prm: ProcessRewardModel | null,
  prmTokenizer: Tokenizer | null,
  problems: MathProblem[],
  options: MathBuildOptions,
): Promise<{ labelled: LabelledProblem[]; summary: MathBuildSummary }> {
  const k = options.samples ?? 8;
  const temperature = options.temperature ?? 1.0;
  const topP = options.topP ?? 0.8;
  const maxNew = options.maxNewTokens ?? 4096;
  const truncate = options.truncateLength ?? 4000;
  const batchSize = options.batchSize ?? 4;
  const seed = options.seed ?? 42;
  const stepToken = options.stepToken ?? "<extra_0>";
  const stepIds = prmTokenizer?.encode(stepToken, { addSpecialTokens: false }) ?? [0];
  if (stepIds.length !== 1)
    throw new DataError([
      `the PRM's tokenizer reads the step separator '${stepToken}' as ${stepIds.length} tokens, not one`,
    ]);
  const golds = problems.map((p) => {
    try {
      return goldAnswer(recordFor(p.answer, "math"), "math");
    } catch (e) {
      throw new DataError([`${p.at}: ${(e as Error).message}`]);
    }
  });
  const prompts = problems.map((p) =>
    options.promptTemplate !== undefined
      ? options.promptTemplate.replaceAll("{input}", p.problem)
      : chatText(
          tokenizer,
          [
            { role: "system", content: MATH_SYSTEM },
            { role: "user", content: p.problem + MATH_SUFFIX },
          ],
          true,
        ),
  );
  const ids = prompts.map((p) => tokenizer.encode(p));
  const identity = createHash("sha256")
    .update(
      JSON.stringify({
        prompts,
        golds,
        k,
        temperature,
        topP,
        maxNew,
        truncate,
        seed,
        ...(prm ? { stepToken } : { verifiableOnly: true }),
        ...options.identity,
      }),
    )
    .digest("hex");
  const journal = openRecordJournal<LabelledProblem>(options.journal, {
    kind: "omni-dpo data build math",
    identity,
    key: (p) => p.i,
    otherWork:
      "this journal belongs to another build (other problems, models or settings); " +
      "delete it or pass --restart to start over",
    damagedHint: "delete the journal or pass --restart",
  });
  const done = journal.done;
  const resumed = done.size;
  const generator = asGenerator(sampler, tokenizer);
  const context = generator.maxPositions ?? Infinity;
  const order = problems.map((_, i) => i).sort((a, b) => ids[a].length - ids[b].length || a - b);
  let truncated = 0;
  let withoutAnswer = 0;
  options.onProgress?.(done.size, problems.length);
  for (let b = 0; b < order.length; b += batchSize) {
    const todo = order.slice(b, b + batchSize).filter((i) => !done.has(i));
    if (todo.length === 0) continue;
    const room = (i: number) => Math.min(maxNew, context - ids[i].length);
    const bad = todo.find((i) => room(i) < 1);
    if (bad !== undefined)
      throw new DataError([
        `${problems[bad].at}: the prompt (${ids[bad].length} tokens) fills the policy's ${context} positions`,
      ]);
    const out = await generator.generate(
      todo.map((i) => ({
        prompt: prompts[i],
        seeds: Array.from({ length: k }, (_, j) => rowSeed(seed, i, j)),
        maxTokens: room(i),
        temperature,
        topP,
        stop: STOP_WORDS,
      })),
    );
    const finished: LabelledProblem[] = [];
    const toScore: LabelledProblem[] = [];
    todo.forEach((i, n) => {
      const item: LabelledProblem = {
        i,
        prompt: prompts[i],
        responses: [],
        correct: [],
        pred: [],
        min_rewards: [],
        avg_rewards: [],
      };
      finished.push(item);
      let kept = 0;
      for (const sample of out[n]) {
        // gen_samples.py: prompt + completion longer than the truncation length is garbage
        if (truncate > 0 && ids[i].length + sample.tokens > truncate) {
          truncated++;
          continue;
        }
        kept++;
        const response = cutAtStopWords(sample.text);
        const grade = gradeAgainstGold(response, golds[i], "math");
        // verifiable_reward_labeling.py: a response without an answer is dropped
        if (grade.extracted.trim() === "") {
          withoutAnswer++;
          continue;
        }
        item.responses.push(response);
        item.correct.push(grade.correct);
        item.pred.push(grade.extracted);
      }
      if (kept === 0) item.dropped = "all_truncated";
      else if (item.responses.length === 0) item.dropped = "no_answer";
      else if (!item.correct.some(Boolean)) item.dropped = "all_wrong";
      else toScore.push(item);
    });
    if (prm && prmTokenizer) {
      const rewards = stepScores(prm, prmTokenizer, stepToken, stepIds[0], problems, toScore);
      // each response's least and mean step score, to 3 decimals as the reference keeps them
      const round3 = (x: number) => Math.round(x * 1000) / 1000;
      toScore.forEach((problem, n) => {
        problem.min_rewards.push(...rewards[n].map((steps) => round3(Math.min(...steps))));
        problem.avg_rewards.push(...rewards[n].map((steps) => round3(steps.reduce((s, x) => s + x, 0) / steps.length)));
      });
    } else {
      // no process reward model: the verifiable reward (1 correct, 0 wrong) is every response's score
      for (const problem of toScore) {
        problem.min_rewards.push(...problem.correct.map(Number));
        problem.avg_rewards.push(...problem.correct.map(Number));
      }
    }
    journal.append(finished);
    options.onProgress?.(done.size, problems.length);
  }
  const labelled = problems.map((_, i) => done.get(i)!);
  const dropped: Record<string, number> = {};
  for (const l of labelled) if (l.dropped) dropped[l.dropped] = (dropped[l.dropped] ?? 0) + 1;
  const responses = labelled.reduce((s, l) => s + l.responses.length, 0);
  const summary: MathBuildSummary = {
    problems: problems.length,
    resumed,
    labelled: labelled.filter((l) => !l.dropped).length,
    dropped,
    responses,
    responses_truncated: truncated,
    responses_without_answer: withoutAnswer,
    correct_rate: responses ? labelled.reduce((s, l) => s + l.correct.filter(Boolean).length, 0) / responses : 0,
  };
  return { labelled, summary };
}

/**
 * progress_reward_labeling.py: each response's steps (split on blank lines) joined and ended by
 * the separator, in the PRM's chat format; per problem, per response, the score of every step.
 */
function stepScores(
  prm: ProcessRewardModel,
  prmTokenizer: Tokenizer,
  stepToken: string,
  stepTokenId: number,
  problems: MathProblem[],
  items: LabelledProblem[],
): number[][][] {
  const rows = items.flatMap((item) =>
    item.responses.map((response) =>
      prmTokenizer.encode(
        chatText(
          prmTokenizer,
          [
            { role: "system", content: MATH_SYSTEM },
            { role: "user", content: problems[item.i].problem },
            { role: "assistant", content: response.split("\n\n").join(stepToken) + stepToken },
          ],
          false,
        ),
      ),
    ),
  );
  const rewards = rows.length ? prm.stepRewards(rows, { stepTokenId }) : [];
  let at = 0;
  return items.map((item) =>
    item.responses.map(() => {
      const steps = rewards[at++];
      if (steps.length === 0)
        throw new DataError([
          `${problems[item.i].at}: the PRM input of a response holds no step separator ` +
            "(truncated by the PRM's context?)",
        ]);
      return steps;
    }),
  );
}

/** The problems of a JSON Lines file: 'problem' (or 'prompt') and 'answer' (a string or number). */
export function readMathProblems(file: string): MathProblem[] {
  const problems: MathProblem[] = [];
  for (const line of readLines(file)) {
    if ("problem" in line) throw new DataError([line.problem]);
    if (line.text.trim() === "") continue;
    const at = `${file}:${line.number}`;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line.text);
    } catch (e) {
      throw new DataError([`${at}: not valid JSON (${(e as Error).message})`]);
    }
    if (row === null || typeof row !== "object" || Array.isArray(row))
      throw new DataError([`${at}: expected a JSON object`]);
    const problem = typeof row.problem === "string" ? row.problem : row.prompt;
    if (typeof problem !== "string" || problem.trim() === "")
      throw new DataError([`${at}: field 'problem' (or 'prompt') must be a non-empty string`]);
    const answer = typeof row.answer === "number" ? String(row.answer) : row.answer;
    if (typeof answer !== "string" || answer.trim() === "")
      throw new DataError([`${at}: field 'answer' must be a non-empty string or a number`]);
    problems.push({ problem, answer, at });
  }
  if (problems.length === 0) throw new DataError([`${file}: no problems`]);
  return problems;
}

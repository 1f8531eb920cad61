// The two judges of a win-rate evaluation, behind one interface:
//   - a reward model (a sequence-classification checkpoint): each answer's reward in the reward
//     model's own chat template; the pair goes to the higher reward, equal rewards tie;
//   - an LLM judge behind an OpenAI-compatible endpoint, Arena-Hard style: the pair is judged
//     twice, once with the model's answer as A and once as B, so a judge that favours a position
//     cancels out; each verdict must be one of [[A>>B]], [[A>B]], [[A=B]], [[B>A]], [[B>>A]].
// In score mode (MT-Bench's single-answer grading) the reward model gives each answer its reward
// and the LLM judge a 1-10 rating (src/eval/llm-judge.ts's rubric and parsing).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Message } from "../../data/records.js";
import { rewardInput } from "../../data/reward.js";
import type { ResponseToScore } from "../../data/text-build.js";
import type { Generator } from "../../generation/types.js";
import type { SequenceClassifier } from "../../models/sequence-classification.js";
import type { Tokenizer } from "../../text/index.js";
import { checkTokenIds } from "../../models/vocab.js";
import { packageRoot } from "../../util/package-root.js";
import { JudgeTemplateError, judgeRefusable, llmJudgeScorer, type JudgeOptions } from "../llm-judge.js";

export const DEFAULT_PAIRWISE_TEMPLATE = join(packageRoot(), "assets", "judge", "pairwise.txt");

/** A prompt with the model's answer and the baseline's. */
export interface AnswerPair {
  prompt: string | Message[];
  answer: string;
  baseline: string;
  /** Where the prompt came from ("file:line"), for errors. */
  at?: string;
}

export type Verdict = "A>>B" | "A>B" | "A=B" | "B>A" | "B>>A";

/** One pair's judgement. preference: 1 the model won, 0 the baseline, 0.5 a tie; null unjudged. */
export interface PairJudgement {
  preference: number | null;
  /** The reward model's rewards, [model, baseline]. */
  scores?: [number, number];
  /** The LLM judge's verdicts: [model as A, model as B]; null where unparseable. */
  verdicts?: [Verdict | null, Verdict | null];
  /** The verdicts that did not parse (0-2). */
  unparseable?: number;
  /** The verdicts the judge's server refused to give (HTTP 400: the request beyond its context, say). */
  refused?: number;
}

export interface WinRateJudge {
  /** What judges (recorded in the journal: another judge is another evaluation). */
  readonly name: string;
  /** True when the judge sees the answers in an order (an LLM): position consistency is reported. */
  readonly positional: boolean;
  comparePairs(pairs: AnswerPair[]): Promise<PairJudgement[]>;
  /** A score per answer (a reward, or a 1-10 rating); null where the judge gave none. */
  scoreAnswers(items: { prompt: string | Message[]; response: string; at?: string }[]): Promise<(number | null)[]>;
  /** Answers the judge had to cut to fit its context (a reward model's), so far. */
  readonly truncated?: number;
  dispose?(): void;
}

export interface RewardModelJudgeOptions {
  /** Answers per forward pass (default 16). */
  batchSize?: number;
  /** The reward model's directory, named in errors. */
  dir?: string;
}

/**
 * A judge by reward: the (prompt, answer) conversation in the reward model's chat template (as
 * data build scores), read at the last token. An input longer than the reward model's context
 * keeps its start and is counted in `truncated`.
 */
export function rewardModelJudge(
  model: SequenceClassifier,
  tokenizer: Tokenizer,
  options: RewardModelJudgeOptions = {},
): WinRateJudge {
  const where = options.dir ?? "the reward model";
  if (model.numLabels !== 1) {
    throw new Error(
      `${options.dir ? join(options.dir, "config.json") : where}: field num_labels: ` +
        `the reward model has ${model.numLabels} labels; a judge gives one score (num_labels 1)`,
    );
  }
  const context = model.body.maxPositions;
  const judge = {
    name: `reward model ${where}`,
    positional: false,
    truncated: 0,
    async scoreAnswers(items: { prompt: string | Message[]; response: string; at?: string }[]) {
      const rows = items.map((item, i) => {
        const at = item.at ?? `answer ${i + 1}`;
        if (typeof item.prompt !== "string" && tokenizer.chatTemplate === undefined) {
          throw new Error(`${at}: a message-list prompt needs ${where}'s chat template, and its tokenizer has none`);
        }
        const toScore: ResponseToScore = {
          prompt: item.prompt,
          promptText: typeof item.prompt === "string" ? item.prompt : "",
          chat: false,
          response: item.response,
          at,
        };
        return rewardInput(tokenizer, toScore);
      });
      checkTokenIds(
        rows.map((ids, i) => ({ at: `${items[i].at ?? `answer ${i + 1}`} (answer to judge)`, ids })),
        { size: model.vocabSize, file: options.dir ? join(options.dir, "config.json") : where },
        where,
      );
      const fitted = rows.map((ids) => {
        if (ids.length <= context) return ids;
        judge.truncated++;
        return ids.slice(0, context);
      });
      return model.scoreTokenLists(fitted, { batchSize: options.batchSize ?? 16 }).map((s) => s[0]);
    },
    async comparePairs(pairs: AnswerPair[]): Promise<PairJudgement[]> {
      // [model answers..., baseline answers...]: one batched pass over both sides.
      const scores = (await judge.scoreAnswers([
        ...pairs.map((p) => ({ prompt: p.prompt, response: p.answer, at: p.at })),
        ...pairs.map((p) => ({ prompt: p.prompt, response: p.baseline, at: p.at })),
      ])) as number[];
      return pairs.map((_, i) => {
        const [m, b] = [scores[i], scores[pairs.length + i]];
        return { preference: m > b ? 1 : m < b ? 0 : 0.5, scores: [m, b] };
      });
    },
  };
  return judge;
}

/** Reads a pairwise template: {{prompt}}, {{answer_a}} and {{answer_b}} exactly once each. */
export function readPairwiseTemplate(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new JudgeTemplateError(`${file}: cannot read the judge template: ${(e as Error).message}`);
  }
  for (const slot of ["{{prompt}}", "{{answer_a}}", "{{answer_b}}"]) {
    const count = text.split(slot).length - 1;
    if (count !== 1) {
      throw new JudgeTemplateError(
        `${file}: a pairwise judge template must contain ${slot} exactly once (found ${count})`,
      );
    }
  }
  return text;
}

/** The template with the conversation and the two answers filled in (one pass: answers may look like slots). */
export function pairwisePrompt(template: string, prompt: string | Message[], a: string, b: string): string {
  const conversation = typeof prompt === "string" ? prompt : prompt.map((m) => `${m.role}: ${m.content}`).join("\n");
  const slots: Record<string, string> = { prompt: conversation, answer_a: a, answer_b: b };
  return template.replace(/\{\{(prompt|answer_a|answer_b)\}\}/g, (_, slot: string) => slots[slot]);
}

const VERDICTS = new Set<string>(["A>>B", "A>B", "A=B", "B>A", "B>>A"]);

/**
 * The verdict in a judgement, or null: every [[...]] in the text must be the same one of the five
 * verdicts (Arena-Hard's rule: a judge that names two, or one outside the set, is unparseable).
 */
export function parsePairwiseVerdict(text: string): Verdict | null {
  const found = [...text.matchAll(/\[\[([^\]]*)\]\]/g)].map((m) => m[1].replace(/\s+/g, ""));
  if (found.length === 0 || !found.every((v) => v === found[0]) || !VERDICTS.has(found[0])) return null;
  return found[0] as Verdict;
}

/** The model's preference from one verdict: `modelIs` the side its answer was shown on. */
export function preferenceOf(verdict: Verdict, modelIs: "A" | "B"): number {
  const aWins = verdict.startsWith("A>") ? 1 : verdict === "A=B" ? 0.5 : 0;
  return modelIs === "A" ? aWins : 1 - aWins;
}

/**
 * Both orders' verdicts as one preference: their mean (so one win and one loss is a tie); one
 * unparseable verdict leaves the other; none leaves the pair unjudged (null).
 */
export function combineOrders(modelAsA: Verdict | null, modelAsB: Verdict | null): number | null {
  const prefs = [
    modelAsA === null ? null : preferenceOf(modelAsA, "A"),
    modelAsB === null ? null : preferenceOf(modelAsB, "B"),
  ].filter((p): p is number => p !== null);
  return prefs.length === 0 ? null : prefs.reduce((s, p) => s + p, 0) / prefs.length;
}

export interface LlmPairwiseJudgeOptions {
  /** The pairwise template (default assets/judge/pairwise.txt). */
  templateFile?: string;
  /** The 1-10 rubric for score mode (default src/eval/llm-judge.ts's). */
  scoreTemplateFile?: string;
  /** Tokens the judge may write (default 1024 pairwise: it answers first; 256 scoring). */
  maxTokens?: number;
  /** Extra attempts for an unparseable rating in score mode (default 2). */
  retries?: number;
}

/** An LLM judge through `generator` (an endpoint), judging each pair in both orders at temperature 0. */
export function llmPairwiseJudge(generator: Generator, options: LlmPairwiseJudgeOptions = {}): WinRateJudge {
  const templateFile = options.templateFile ?? DEFAULT_PAIRWISE_TEMPLATE;
  const template = readPairwiseTemplate(templateFile);
  const scoreOptions: JudgeOptions = {
    templateFile: options.scoreTemplateFile,
    retries: options.retries,
    maxTokens: options.maxTokens,
  };
  // Made now, so a bad rubric fails before any answer is generated.
  const scorer = llmJudgeScorer(generator, scoreOptions);
  return {
    name: `LLM judge ${generator.name} template ${templateFile}`,
    positional: true,
    async comparePairs(pairs) {
      // Request 2i shows the model's answer as A, 2i + 1 as B.
      const requests = pairs.flatMap((p) => [
        pairwisePrompt(template, p.prompt, p.answer, p.baseline),
        pairwisePrompt(template, p.prompt, p.baseline, p.answer),
      ]);
      const out = await judgeRefusable(
        generator,
        requests.map((text) => ({
          prompt: [{ role: "user" as const, content: text }],
          maxTokens: options.maxTokens ?? 1024,
          temperature: 0,
        })),
      );
      return pairs.map((_, i) => {
        const texts = [out[2 * i], out[2 * i + 1]];
        const verdicts = texts.map((t) => (t === null ? null : parsePairwiseVerdict(t))) as [
          Verdict | null,
          Verdict | null,
        ];
        const refused = texts.filter((t) => t === null).length;
        return {
          preference: combineOrders(...verdicts),
          verdicts,
          unparseable: verdicts.filter((v) => v === null).length - refused,
          ...(refused ? { refused } : {}),
        };
      });
    },
    async scoreAnswers(items) {
      return scorer.score(
        items.map((item, i) => ({
          prompt: item.prompt,
          promptText: typeof item.prompt === "string" ? item.prompt : "",
          chat: typeof item.prompt !== "string",
          response: item.response,
          at: item.at ?? `answer ${i + 1}`,
        })),
      );
    },
  };
}

// An LLM judge: a scorer that asks a model behind an endpoint for a 1-10 rating from a rubric
// prompt (the reference's v2 data were scored so, by GPT-4o and Qwen2.5-72B). The rubric is a
// template with {{prompt}} and {{response}}; the shipped one (assets/judge/helpfulness.txt)
// rates helpfulness. The verdict is parsed strictly: its last non-empty line must be
// "Rating: N" with N an integer from 1 to 10. An unparseable verdict is counted and asked again
// (sampling at temperature 1 with another seed, so the retry can differ); one still unparseable
// after the retries leaves its response unscored (null), counted, never fatal.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { BatchScorer, ResponseToScore } from "../data/text-build.js";
import { rowSeed } from "../data/text-build.js";
import { EndpointError } from "../generation/endpoint.js";
import type { GenerationRequest, Generator } from "../generation/types.js";
import { packageRoot } from "../util/package-root.js";

export const DEFAULT_JUDGE_TEMPLATE = join(packageRoot(), "assets", "judge", "helpfulness.txt");

export interface JudgeOptions {
  /** The rubric template file (default the shipped helpfulness rubric). */
  templateFile?: string;
  /** Extra attempts for an unparseable verdict (default 2). */
  retries?: number;
  /** Tokens the judge may write (default 256). */
  maxTokens?: number;
  /** The first attempt's temperature (default 0). */
  temperature?: number;
}

export interface JudgeCounts {
  /** Verdicts asked for, retries included. */
  asked: number;
  /** Verdicts that did not parse (each retry counts). */
  unparseable: number;
  /** Responses left unscored after every retry. */
  dropped: number;
  /** Verdicts the judge's server refused (HTTP 400: the judge prompt beyond its context, say); not asked again. */
  refused: number;
}

export class JudgeTemplateError extends Error {}

/** Reads a rubric template; it must hold {{prompt}} and {{response}} once each. */
export function readJudgeTemplate(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new JudgeTemplateError(`${file}: cannot read the judge template: ${(e as Error).message}`);
  }
  for (const slot of ["{{prompt}}", "{{response}}"]) {
    const count = text.split(slot).length - 1;
    if (count !== 1) {
      throw new JudgeTemplateError(`${file}: a judge template must contain ${slot} exactly once (found ${count})`);
    }
  }
  return text;
}

/** The rubric with the conversation and the response filled in. */
export function judgePrompt(template: string, item: Pick<ResponseToScore, "prompt" | "response">): string {
  const conversation =
    typeof item.prompt === "string" ? item.prompt : item.prompt.map((m) => `${m.role}: ${m.content}`).join("\n");
  // One pass over the template, so text in the prompt that looks like a slot is left alone.
  return template.replace(/\{\{(prompt|response)\}\}/g, (_, slot: string) =>
    slot === "prompt" ? conversation : item.response,
  );
}

/** The rating in a verdict, or null: the last non-empty line must be exactly "Rating: N", N in 1..10. */
export function parseVerdict(text: string): number | null {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const m = /^rating:\s*(10|[1-9])$/i.exec(lines[lines.length - 1] ?? "");
  return m ? Number(m[1]) : null;
}

/**
 * Each request's answer, or null where the server refused it with HTTP 400 (a judge prompt
 * beyond the judge's context, say): one such request must not end an evaluation that would meet
 * it again on every resume. The batch goes as one call; only when it is refused are its requests
 * sent one by one, to find which. Any other error ends the call, as before.
 */
export async function judgeRefusable(generator: Generator, requests: GenerationRequest[]): Promise<(string | null)[]> {
  const refused = (e: unknown) => e instanceof EndpointError && e.status === 400;
  try {
    return (await generator.generate(requests)).map((samples) => samples[0].text);
  } catch (e) {
    if (!refused(e)) throw e;
    if (requests.length === 1) return [null];
  }
  const out: (string | null)[] = [];
  for (const request of requests) out.push(...(await judgeRefusable(generator, [request])));
  return out;
}

/** A BatchScorer asking `judge` (an endpoint generator) for each response's rating. */
export function llmJudgeScorer(judge: Generator, options: JudgeOptions = {}): BatchScorer & { counts: JudgeCounts } {
  const templateFile = options.templateFile ?? DEFAULT_JUDGE_TEMPLATE;
  const template = readJudgeTemplate(templateFile);
  const retries = options.retries ?? 2;
  const counts: JudgeCounts = { asked: 0, unparseable: 0, dropped: 0, refused: 0 };
  return {
    // The name goes into the build's journal identity: another judge or rubric is another build.
    name: `LLM judge ${judge.name} rubric ${templateFile} (${retries} retries)`,
    counts,
    async score(items) {
      const prompts = items.map((item) => judgePrompt(template, item));
      const scores: (number | null)[] = items.map(() => null);
      let pending = items.map((_, i) => i);
      for (let attempt = 0; attempt <= retries && pending.length > 0; attempt++) {
        const verdicts = await judgeRefusable(
          judge,
          pending.map((i) => ({
            prompt: [{ role: "user" as const, content: prompts[i] }],
            seeds: [rowSeed(attempt, prompts[i])],
            maxTokens: options.maxTokens ?? 256,
            temperature: attempt === 0 ? (options.temperature ?? 0) : 1,
          })),
        );
        counts.asked += pending.length;
        pending = pending.filter((i, n) => {
          const text = verdicts[n];
          if (text === null) {
            counts.refused++; // asked again, it would be refused again
            counts.dropped++;
            return false;
          }
          scores[i] = parseVerdict(text);
          if (scores[i] === null) counts.unparseable++;
          return scores[i] === null;
        });
      }
      counts.dropped += pending.length;
      return scores;
    },
  };
}

// The verifiable reward: is the final answer of a response right? Only the answer counts, not
// the steps (that is the process judge's business).
import type { ArithProblem } from "./problems.js";
import { ANSWER_MARKER, TERMINATOR } from "./steps.js";

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
// The marker must start a token ("xA=5." is not an answer) and the terminator must follow the
// number (a response cut off inside its answer has none).
const ANSWER_RE = new RegExp(`(?:^|\\s)${escape(ANSWER_MARKER)}(-?\\d{1,15})${escape(TERMINATOR)}`);

/**
 * The final answer of a response: the first "A=<integer>." that starts a token, or undefined
 * (no answer, a truncated one, garbage). Never throws.
 */
export function extractAnswer(response: string): number | undefined {
  if (typeof response !== "string") return undefined;
  const m = ANSWER_RE.exec(response);
  if (!m) return undefined;
  const value = Number(m[1]);
  return Number.isSafeInteger(value) ? (Object.is(value, -0) ? 0 : value) : undefined;
}

/** Whether the response's final answer is the problem's answer; malformed responses are wrong. Never throws. */
export function verify(problem: ArithProblem, response: string): boolean {
  const answer = extractAnswer(response);
  return answer !== undefined && answer === problem.answer;
}

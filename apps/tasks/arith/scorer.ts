// The task's scorer for preference-data building: the verifier says whether the final answer
// is right, the noisy process judge scores the steps (0..10), as the reference scores math
// responses with a verifiable reward and a process reward model.
import { processJudge, type JudgeOptions } from "./judge.js";
import { parsePrompt } from "./problems.js";
import { verify } from "./verifier.js";

export interface ArithScore {
  score: number;
  correct: boolean;
}

export function arithScorer(options: JudgeOptions = {}): (prompt: string, response: string) => ArithScore {
  return (prompt, response) => {
    const problem = parsePrompt(prompt);
    if (!problem) throw new Error(`not an arithmetic prompt (expected "Q:<a><op><b>="): ${JSON.stringify(prompt)}`);
    return { score: processJudge(problem, response, options), correct: verify(problem, response) };
  };
}

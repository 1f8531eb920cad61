// Held-out measurement of an arithmetic policy: greedy answers, checked by the verifier.
import { type CausalLM, generate, type Tokenizer } from "../../src/index.js";
import { formatPrompt, verify, type ArithProblem } from "../tasks/arith/index.js";

/** 1 where the greedy answer to problem j is right, else 0 (per problem, so methods compare problem by problem). */
export function greedyCorrect(model: CausalLM, tokenizer: Tokenizer, problems: ArithProblem[]): number[] {
  const correct: number[] = [];
  for (let i = 0; i < problems.length; i += 128) {
    const chunk = problems.slice(i, i + 128);
    const out = generate(
      model,
      chunk.map((p) => tokenizer.encode(formatPrompt(p))),
      {
        maxNewTokens: 64,
        eosTokenIds: [tokenizer.eosTokenId!],
        padTokenId: tokenizer.padTokenId,
      },
    );
    out.tokens.forEach((t, j) =>
      correct.push(verify(chunk[j], tokenizer.decode(t, { skipSpecialTokens: true })) ? 1 : 0),
    );
  }
  return correct;
}

/** Greedy accuracy of `model` on problems. */
export function greedyAccuracy(model: CausalLM, tokenizer: Tokenizer, problems: ArithProblem[]): number {
  const correct = greedyCorrect(model, tokenizer, problems);
  return correct.reduce((a, b) => a + b, 0) / Math.max(correct.length, 1);
}

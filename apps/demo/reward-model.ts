// The rm pipeline's reward model: a small sequence classifier trained by `omni-dpo train-rm`'s
// trainer (trainRewardModel, the Bradley-Terry loss) on pairs the noisy process judge labels,
// from the policy's own samples of prompts that no other stage of the demo sees; then it scores
// the on-policy samples the other pipelines use. It starts from the SFT checkpoint (its body, a
// fresh one-label score head), as reward models usually start from the policy's SFT model.
import { join } from "node:path";
import { loadSequenceClassifier, type Pair, type ScoredSamples, type Tokenizer } from "../../src/index.js";
import { tokenizePair, TOKENIZE_DEFAULTS } from "../../src/data/tokenize.js";

/** How the demo's reward model is trained (the trainer's YAML keys; model, data and output are the demo's). */
export const RM_RECIPE = {
  learning_rate: 1e-3,
  num_train_epochs: 2,
  per_device_train_batch_size: 32,
  lr_scheduler_type: "cosine",
  warmup_ratio: 0.1,
  weight_decay: 0,
  max_length: 128,
  max_prompt_length: 32,
  logging_steps: 5,
  save_strategy: "no",
  report_to: "none",
  overwrite_output_dir: true,
} as const;

/** Share of the reward model's prompts whose pairs are held out to measure its pairwise accuracy. */
export const RM_HELDOUT_SHARE = 0.2;

/**
 * Judge-labelled pairs for the reward model: each prompt's samples in twos (0 with 1, 2 with 3,
 * ...), the higher judge score chosen. Disjoint pairs of random samples cover close and far
 * scores alike, so the model learns small differences too, not only best against worst. Pairs of
 * identical answers or tied scores carry no label and are skipped.
 */
export function judgePairs(samples: ScoredSamples): Pair[] {
  const pairs: Pair[] = [];
  samples.scored.forEach((scored, i) => {
    for (let j = 0; j + 1 < scored.length; j += 2) {
      const [a, b] = [scored[j], scored[j + 1]];
      if (a.response === b.response || a.score === b.score) continue;
      const [w, l] = a.score > b.score ? [a, b] : [b, a];
      pairs.push({
        prompt: samples.prompts[i],
        chosen: w.response,
        rejected: l.response,
        score_chosen: w.score,
        score_rejected: l.score,
        chosen_correct: w.correct,
        rejected_correct: l.correct,
      });
    }
  });
  return pairs;
}

/** The token ids the reward model reads for one answer: exactly as the trainer tokenised its pairs. */
function rewardRow(tokenizer: Tokenizer, prompt: string, response: string): number[] {
  const options = {
    ...TOKENIZE_DEFAULTS,
    maxLength: RM_RECIPE.max_length,
    maxPromptLength: RM_RECIPE.max_prompt_length,
  };
  return tokenizePair({ prompt, chosen: response, rejected: response }, tokenizer, options).chosenInputIds;
}

/** The reward model in `dir` scoring (prompt, response) items: one number each. */
export function scoreResponses(dir: string, tokenizer: Tokenizer, items: { prompt: string; response: string }[]) {
  const model = loadSequenceClassifier(dir);
  try {
    const rows = items.map((x) => rewardRow(tokenizer, x.prompt, x.response));
    return model.scoreTokenLists(rows, { batchSize: 128 }).map((s) => s[0]);
  } finally {
    model.dispose();
  }
}

/** Every sample's reward, as [prompt][sample]. */
export function scoreSamples(dir: string, tokenizer: Tokenizer, samples: ScoredSamples): number[][] {
  const items = samples.scored.flatMap((xs, i) => xs.map((s) => ({ prompt: samples.prompts[i], response: s.response })));
  const flat = scoreResponses(dir, tokenizer, items);
  let k = 0;
  return samples.scored.map((xs) => xs.map(() => flat[k++]));
}

/** Share of `pairs` whose chosen answer the reward model scores above the rejected one (ties count half). */
export function pairwiseAccuracy(dir: string, tokenizer: Tokenizer, pairs: Pair[]): number {
  const chosen = scoreResponses(
    dir,
    tokenizer,
    pairs.map((p) => ({ prompt: p.prompt, response: p.chosen })),
  );
  const rejected = scoreResponses(
    dir,
    tokenizer,
    pairs.map((p) => ({ prompt: p.prompt, response: p.rejected })),
  );
  const wins = chosen.reduce((n, c, i) => n + (c > rejected[i] ? 1 : c === rejected[i] ? 0.5 : 0), 0);
  return wins / Math.max(pairs.length, 1);
}

/** Where the demo keeps its reward model. */
export function rewardModelDir(outDir: string): string {
  return join(outDir, "reward-model");
}

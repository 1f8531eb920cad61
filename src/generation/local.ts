// The in-process engine: a model directory's CausalLM and tokenizer behind the Generator
// interface. All samples of one call decode as one left-padded batch (rows leaving it as they
// finish), grouped only where their sampling settings differ.
import type { CausalLM } from "../models/causal-lm.js";
import { generate } from "../models/generate.js";
import { stopTokenIds } from "../models/generation-config.js";
import type { Tokenizer } from "../text/index.js";
import { promptIds } from "./prompt.js";
import {
  sampleCount,
  type GenerateCallOptions,
  type GeneratedSample,
  type GenerationRequest,
  type Generator,
} from "./types.js";

export class LocalGenerator implements Generator {
  readonly eosTokenIds: number[];

  constructor(
    readonly model: CausalLM,
    readonly tokenizer: Tokenizer,
    readonly name: string,
  ) {
    // The model's generation_config.json names its EOS ids (chat models list the end-of-turn token there).
    this.eosTokenIds = stopTokenIds(model.generationConfig, tokenizer.eosTokenId);
  }

  get maxPositions(): number {
    return this.model.maxPositions;
  }

  async generate(requests: GenerationRequest[], options: GenerateCallOptions = {}): Promise<GeneratedSample[][]> {
    const seeded = requests.filter((r) => r.seeds).length;
    if (seeded !== 0 && seeded !== requests.length) {
      throw new Error("generate: give seeds for every request or for none (one batch draws from one kind of stream)");
    }
    const results: GeneratedSample[][] = requests.map(() => []);
    // One batch per set of sampling settings (generate() takes one set).
    const groups = new Map<string, number[]>();
    requests.forEach((r, i) => {
      const key = JSON.stringify([r.temperature, r.topP ?? 1, r.topK ?? 0, r.stop ?? []]);
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    for (const members of groups.values()) {
      const rows = members.flatMap((i) => {
        const ids = promptIds(this.tokenizer, requests[i].prompt);
        return Array.from({ length: sampleCount(requests[i]) }, (_, j) => ({ i, ids, seed: requests[i].seeds?.[j] }));
      });
      const r = requests[members[0]];
      const stop = r.stop?.filter((s) => s !== "") ?? [];
      const decode = (t: number[]) =>
        this.tokenizer.decode(
          t.filter((id) => !this.eosTokenIds.includes(id)),
          { skipSpecialTokens: true },
        );
      const out = generate(
        this.model,
        rows.map((row) => row.ids),
        {
          maxNewTokens: rows.map((row) => requests[row.i].maxTokens),
          temperature: r.temperature,
          topP: r.topP,
          topK: r.topK,
          eosTokenIds: this.eosTokenIds,
          padTokenId: this.tokenizer.padTokenId,
          ...(seeded ? { rowSeeds: rows.map((row) => row.seed!) } : { seed: options.seed }),
          ...(stop.length ? { stopStrings: stop, decode } : {}),
        },
      );
      rows.forEach((row, n) => {
        let text = decode(out.tokens[n]);
        // As an endpoint answers: the stop string itself is not part of the answer.
        const cut = Math.min(...stop.map((s) => text.indexOf(s)).filter((x) => x >= 0));
        if (Number.isFinite(cut)) text = text.slice(0, cut);
        results[row.i].push({ text, tokens: out.tokens[n].length, finishReason: out.finishReasons[n] });
        options.onSample?.();
      });
    }
    return results;
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** A generator as given, or a model wrapped in the local engine (for callers that still pass a model). */
export function asGenerator(source: CausalLM | Generator, tokenizer: Tokenizer, name = "the local model"): Generator {
  return isGenerator(source) ? source : new LocalGenerator(source, tokenizer, name);
}

export function isGenerator(x: CausalLM | Generator): x is Generator {
  return typeof (x as Generator).generate === "function" && typeof (x as Generator).name === "string";
}

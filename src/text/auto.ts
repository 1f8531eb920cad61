// AutoTokenizer, as in transformers: one entry point for every tokenizer directory. Every
// tokenizer.json layout goes through the one Tokenizer class, so this only forwards.
import { Tokenizer } from "./tokenizer.js";

export const AutoTokenizer = {
  /** Loads the tokenizer in `dir` (tokenizer.json + tokenizer_config.json). */
  fromPretrained(dir: string): Promise<Tokenizer> {
    return Tokenizer.fromPretrained(dir);
  },
  /** fromPretrained without the promise. */
  fromPretrainedSync(dir: string): Tokenizer {
    return Tokenizer.fromPretrainedSync(dir);
  },
} as const;

// The declaration of a loss (a LossSpec) and of its options. Everything else in the objectives
// follows from these declarations: option defaults and validation (options.ts), the inputs a
// loss needs (inputs.ts), how a reference YAML names a loss and sets its options (config.ts),
// the keys a YAML may hold (registry.ts) and the README's table (table.ts).
import type { DType, Tensor } from "../torch/index.js";

/** The value of an option: options are plain data, as they are in a YAML. */
export type OptionValue = number | boolean | string | null;

/**
 * The two reference trainers read YAMLs differently, and declare different defaults
 * (docs/method.md, "Two trainers"): the Textual trainer when `pref_loss` is present (or neither
 * `pref_loss` nor `loss_type` is), the Math trainer when only `loss_type` is.
 */
export type ConfigStyle = "textual" | "math";

/** A number option's range: > 0, >= 0, finite, or anything but NaN (infinities allowed). */
export type NumberCheck = "positive" | "nonnegative" | "finite" | "notNaN";

export interface OptionSpec {
  /** The default in code and in a Textual-style YAML. null: no value (see `required`). */
  default: OptionValue;
  /** The default in a Math-style YAML, where the Math trainer's differs. */
  mathDefault?: OptionValue;
  /** The value's type; needed only when `default` is null. */
  type?: "number" | "boolean" | "string";
  /** A string option a YAML gives as a list (`loss_weights: [1.0, 0.5]`): it holds the items joined by commas. */
  list?: boolean;
  /** The values a string option may take. */
  values?: readonly string[];
  /** A number option's range (default "finite"). */
  check?: NumberCheck;
  /**
   * A further check of the value: what is wrong with it ("must be in [0, 1]"), or null. (The
   * parameter is typed never so that a function of the option's own type fits.)
   */
  refine?: (value: never) => string | null;
  /** The option must be given when its loss is used; the text says why (for the error). */
  required?: string;
  /** What the option means, one line. */
  help?: string;
  /** Its symbol in the formulas (η), for the README. */
  symbol?: string;
  /** How YAML errors name it ("SimPO's form"); default "option <name>". */
  label?: string;
  /** The YAML keys that set it, aliases after the first; default [its name]; [] for none. */
  keys?: readonly string[];
  /** Its keys are read only in this reading of a YAML. */
  style?: ConfigStyle;
  /** The value a YAML value stands for (e.g. a negative c-NLL weight means off); typed as refine. */
  fromYaml?: (value: never) => OptionValue;
  /** A YAML key it is computed from when none of its own keys is given. */
  derived?: DerivedKey;
  /**
   * A YAML holding one of its keys for a loss that lacks this option is an error, because the
   * reference would apply it to that loss (TRL adds rpo_alpha's NLL to any loss).
   */
  exclusive?: boolean;
  /**
   * Work this option asks of the log-prob pass, per token, when set (true or a number):
   * "answerWeights": each answer's WPO weight (exp of the mean of log p_t - log Σ_v p_v², no
   * gradient), given to the loss as chosenWeights / rejectedWeights; "lengthWeight": the tokens
   * of each answer past the shorter answer's length count the option's value times in its
   * log-prob (LD-DPO), for the policy and the reference alike.
   */
  tokens?: TokenWork;
}

/** See OptionSpec.tokens. */
export type TokenWork = "answerWeights" | "lengthWeight";

/** A YAML key whose value determines an option (SimPO's gamma_beta_ratio = simpo_gamma / beta). */
export interface DerivedKey {
  key: string;
  help: string;
  /** Its default per reading; where it has none, the option keeps its own default. */
  default?: number;
  mathDefault?: number;
  /** The option's value from the key's value and the loss's beta. */
  compute: (value: number, beta: number) => number;
  /** The relation, for the README ("r = simpo_gamma / β"). */
  text: string;
}

/** An option as a loss declares it: a full OptionSpec, or just its default. */
export type OptionDecl = OptionSpec | number | boolean | string;
export type OptionDecls = { readonly [name: string]: OptionDecl };

/** One way a reference YAML names a loss: `pref_loss: <value>` or `loss_type: <value>`. */
export interface ConfigName {
  /** The value, as the reference normalises it (lower case, "-" to "_"). */
  value: string;
  /** The reading it belongs to; both when absent. */
  style?: ConfigStyle;
  /** Only when this YAML key holds a value passing `holds` (e.g. label_smoothing > 0). */
  when?: { key: string; holds: (value: number) => boolean; text: string };
  /** Options this name fixes (e.g. TRL's `robust` is robustVariant rdpo). */
  set?: { readonly [option: string]: OptionValue };
}

type Widen<V> = V extends number
  ? number
  : V extends boolean
    ? boolean
    : V extends string
      ? string
      : V extends null
        ? null
        : never;
type OrNull<D, T> = D extends { default: null } ? T | null : T;

/** The value type of an option declaration. */
export type OptionValueOf<D> = D extends { values: readonly (infer S)[] }
  ? S
  : D extends { type: "number" }
    ? OrNull<D, number>
    : D extends { type: "boolean" }
      ? OrNull<D, boolean>
      : D extends { type: "string" }
        ? OrNull<D, string>
        : D extends { default: infer V }
          ? Widen<V>
          : Widen<D>;

/** The options a loss function receives: beta, its own options (every default filled in), and the rest. */
export type LossOptions<O extends OptionDecls = OptionDecls> = { lossType: string; beta: number; validate: boolean } & {
  readonly [K in keyof O]: OptionValueOf<O[K]>;
};

export type ScoreInput = "scoreChosen" | "scoreRejected";

/**
 * What a loss function receives: the 1-D tensors [B] preferenceLoss was given, checked, cast
 * to the policy log-probs' dtype and on their device. Reference log-probs are null for a loss
 * without a reference model; scores are null unless the loss declares it needs them.
 */
export interface LossInputs {
  batchSize: number;
  dtype: DType;
  policyChosenLogps: Tensor;
  policyRejectedLogps: Tensor;
  referenceChosenLogps: Tensor | null;
  referenceRejectedLogps: Tensor | null;
  scoreChosen: Tensor | null;
  scoreRejected: Tensor | null;
  /**
   * Response tokens per chosen / rejected answer [B], or null when the caller gave none (a loss
   * that declares needsLengths always gets them). For the losses that, like TRL, work per token
   * of the summed log-probs (ipo, sigmoid_norm, the sft term, ORPO).
   */
  chosenLengths: Tensor | null;
  rejectedLengths: Tensor | null;
  /** WPO's answer weights [B] (TRL's use_weighting), when the loss's useWeighting is on; else null. */
  chosenWeights: Tensor | null;
  rejectedWeights: Tensor | null;
  /** Are the log-probs per-token means (true) or sums (false)? null when the caller did not say (no lengths given). */
  logpsPerToken: boolean | null;
}

/**
 * A loss function's result: the per-pair losses [B] with their gradient, and optionally more
 * metrics, each a per-pair tensor [B] (logged as its batch mean, without gradient) or a constant.
 */
export interface LossResult {
  losses: Tensor;
  metrics?: { readonly [name: string]: Tensor | number };
}

export interface LossSpec<O extends OptionDecls = OptionDecls> {
  /** The lossType: lower case letters, digits and "_". */
  name: string;
  /** Other names for it, in code and in YAMLs. */
  aliases?: readonly string[];
  /** How people write it ("Omni-DPO"). */
  title?: string;
  /** The per-pair loss, in the README's notation. */
  equation?: string;
  /** Does its margin need the frozen reference model's log-probs? */
  needsReference: boolean;
  /**
   * The judge scores it reads: true for both, or per score the reason it is needed under these
   * options (for the error when one is missing). Default: none.
   */
  needsScores?: boolean | ((options: LossOptions<O>) => Partial<Record<ScoreInput, string>>);
  /**
   * Does it read the answers' token counts (chosenLengths, rejectedLengths with logpsPerToken)?
   * true, or under these options the reason they are needed (null: not needed). Default: no.
   */
  needsLengths?: boolean | ((options: LossOptions<O>) => string | null);
  /**
   * Its name among TRL DPOTrainer's loss types, when it is one: only these may be terms of a
   * list `loss_type: [sigmoid, sft]` (the `combined` loss).
   */
  trlLossType?: string;
  /** Its default beta; default 0.1 (TRL's DPOConfig). */
  beta?: number | { default: number; mathDefault?: number };
  /**
   * Its options, by name (a recipe sets them by the same names unless `keys` says otherwise).
   * `beta: <number>` here is its default beta, like `beta` below.
   */
  options?: O;
  /** The per-pair losses [B]. */
  losses: (inputs: LossInputs, options: LossOptions<O>) => Tensor | LossResult;
  /** How a YAML selects it when no name does (`config: []`), for the README. */
  selectedBy?: string;
  /** How reference YAMLs name it; default: its name and aliases, under pref_loss or loss_type. */
  config?: readonly ConfigName[];
  /** Options this loss reads from a YAML in one reading only (the Math SimPO has no label smoothing). */
  readIn?: { readonly [K in keyof O]?: ConfigStyle };
  /** A check across its options: which option is wrong and what is wrong with it, or null. */
  validate?: (options: LossOptions<O>) => { option: string; message: string } | null;
}

/** Declares a built-in loss with its name's and options' types kept (the registry normalises it). */
export function defineLoss<
  const N extends string,
  const O extends OptionDecls = Record<never, never>,
  const A extends readonly string[] = readonly [],
  const T extends string = never,
>(
  spec: LossSpec<O> & { name: N; aliases?: A; trlLossType?: T },
): LossSpec<O> & { name: N; options: O; aliases?: A; trlLossType?: T } {
  return { ...spec, options: spec.options ?? ({} as O) };
}

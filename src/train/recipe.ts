// The recipe as a program writes it: the YAML's snake_case keys in an object, typed from the
// key table (keys.ts) and the built-in losses' declarations, so an editor completes keys and a
// misspelt key or a wrong value type fails to compile. train() takes one (or a YAML path, or a
// resolved TrainConfig); see api.ts.
import type { BUILTIN_LOSSES } from "../objectives/losses.js";
import type { OptionValueOf } from "../objectives/spec.js";
import type { RECIPE_KEYS, RecipeKey } from "./keys.js";

type Table = typeof RECIPE_KEYS;

/** What a program may give for each kind of key (before paths resolve and defaults fill in). */
interface KindInput {
  path: string;
  string: string;
  number: number;
  integer: number;
  boolean: boolean;
  steps: number;
  mixer: string | string[] | Record<string, number>;
  checkpoint: string | boolean;
  list: string | string[];
  mapping: Record<string, unknown>;
}
type InputOf<S> =
  | (S extends { kind: "enum"; values: readonly (infer V)[] }
      ? V
      : S extends { kind: infer K extends keyof KindInput }
        ? KindInput[K]
        : never)
  | (S extends { default: unknown } ? null : never);

/** Keys without a default: model_name_or_path and output_dir. */
type RequiredKeys = { [K in RecipeKey]: Table[K] extends { default: unknown } ? never : K }[RecipeKey];
type TrainerRecipe = { [K in RequiredKeys]: InputOf<Table[K]> } & {
  [K in Exclude<RecipeKey, RequiredKeys>]?: InputOf<Table[K]>;
};

type Builtin = (typeof BUILTIN_LOSSES)[number];
type Decls<L> = L extends { options: infer O } ? O : never;
type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
type AllDecls = UnionToIntersection<Decls<Builtin>>;
/** Each built-in loss option's YAML keys, typed as the option's value. */
type OptionKeys = {
  [
    K in keyof AllDecls as AllDecls[K] extends { keys: readonly (infer Y extends string)[] } ? Y : never
  ]?: OptionValueOf<AllDecls[K]>;
};

/** The objective's keys beyond the options: the loss's name(s), beta, SimPO's gamma, the combined loss's weights. */
interface ObjectiveRecipe {
  /** The Textual trainer's loss: uni_dpo (omni_dpo), simpo, dpo... */
  pref_loss?: string | null;
  /** TRL's / the Math trainer's loss name, or a list of TRL's (with loss_weights); with pref_loss, SimPO's form. */
  loss_type?: string | string[] | null;
  beta?: number | null;
  /** SimPO's margin gamma (sets gamma_beta_ratio = gamma / beta). */
  simpo_gamma?: number | null;
  /** Weights of a loss_type list's terms. */
  loss_weights?: number[] | null;
}

/**
 * A training recipe: the keys of a recipe YAML (alignment-handbook, TRL, Uni-DPO), snake_case,
 * with their value types. `omni-dpo train --help` (and docs/recipe-keys.md) describes each.
 */
export type Recipe = TrainerRecipe & Omit<OptionKeys, keyof ObjectiveRecipe> & ObjectiveRecipe;

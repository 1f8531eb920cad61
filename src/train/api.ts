// train() as a program calls it: with a YAML path, a typed Recipe object (snake_case keys, as
// the YAML), or a TrainConfig already loaded with loadTrainConfig. From a path or a Recipe it
// prints what the CLI prints (the run header, warnings, a progress bar, eval rows) unless
// `quiet: true`; a TrainConfig trains silently unless given hooks or callbacks (the lower level).
import { ConsoleProgressCallback } from "./callbacks/console-progress.js";
import { loadTrainConfig, parseOverride, type TrainConfig } from "./config.js";
import type { Recipe } from "./recipe.js";
import { PreferenceTrainer, type TrainOptions, type TrainResult } from "./trainer.js";

export interface RecipeTrainOptions extends TrainOptions {
  /** No console output (from a path or a Recipe; a TrainConfig is always quiet unless given hooks). */
  quiet?: boolean;
  /** `key=value` overrides, as the CLI's --set (the value read as YAML). */
  set?: string[];
  /** Unknown keys are warnings instead of errors (the CLI's --allow-unknown-keys). */
  allowUnknownKeys?: boolean;
}

const isTrainConfig = (x: unknown): x is TrainConfig =>
  typeof x === "object" && x !== null && "objective" in x && "source" in x && "modelNameOrPath" in x;

/**
 * Trains as this process's environment says (one rank of a distributed run when WORLD_SIZE is
 * set, else alone), with the stock PreferenceTrainer; `options.callbacks` join the built-in ones.
 */
export async function train(
  recipe: string | Recipe | TrainConfig,
  options: RecipeTrainOptions = {},
): Promise<TrainResult> {
  if (isTrainConfig(recipe)) return new PreferenceTrainer(recipe, options).train();
  const { quiet = false, set = [], allowUnknownKeys = false, ...hooks } = options;
  const { config, warnings } = loadTrainConfig(
    typeof recipe === "string" ? recipe : { ...recipe },
    set.map(parseOverride),
    { allowUnknownKeys },
  );
  const warn = hooks.onWarning ?? (quiet ? undefined : (m: string) => console.error(`warning: ${m}`));
  for (const w of warnings) warn?.(w);
  if (quiet) return new PreferenceTrainer(config, { ...hooks, onWarning: warn }).train();
  return new PreferenceTrainer(config, {
    ...hooks,
    onStatus: hooks.onStatus ?? ((m) => console.error(m)),
    onWarning: warn,
    callbacks: [new ConsoleProgressCallback(true), ...(hooks.callbacks ?? [])],
  }).train();
}

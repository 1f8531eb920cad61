// Options of preferenceLoss: defaults and validation, from the registered loss declarations.
import { ObjectiveError } from "./errors.js";
import {
  DEFAULT_LOSS,
  lossSpec,
  optionNames,
  registeredLosses,
  registeredOptions,
  type RegisteredOption,
} from "./registry.js";
import type { LossOptions, NumberCheck, OptionValue } from "./spec.js";
import { nearestKey } from "../util/nearest.js";
import type {
  PreferenceLossOptions,
  RegisteredLossOptions,
  ResolvedBuiltinOptions,
  ResolvedPreferenceOptions,
} from "./types.js";

function fail(detail: string, option?: string): never {
  throw new ObjectiveError("preferenceLoss", detail, option === undefined ? {} : { option });
}

function checkNumber(name: string, v: unknown, check: NumberCheck): number {
  if (typeof v !== "number") fail(`option ${name} must be a number, got ${typeof v} (${JSON.stringify(v)})`, name);
  if (Number.isNaN(v)) fail(`option ${name} is NaN`, name);
  if (check !== "notNaN" && !Number.isFinite(v)) fail(`option ${name} must be finite, got ${v}`, name);
  if (check === "positive" && !(v > 0)) fail(`option ${name} must be > 0, got ${v}`, name);
  if (check === "nonnegative" && !(v >= 0)) fail(`option ${name} must be >= 0, got ${v}`, name);
  return v;
}

function checkValue(o: RegisteredOption, v: unknown): OptionValue {
  let value: OptionValue;
  if (o.type === "number") value = checkNumber(o.name, v, o.check);
  else if (o.type === "boolean") {
    if (typeof v !== "boolean") fail(`option ${o.name} must be true or false, got ${JSON.stringify(v)}`, o.name);
    value = v;
  } else {
    if (typeof v !== "string" || (o.values && !o.values.includes(v))) {
      fail(
        o.values
          ? `option ${o.name} must be one of ${o.values.join(", ")}, got ${JSON.stringify(v)}`
          : `option ${o.name} must be a string, got ${JSON.stringify(v)}`,
        o.name,
      );
    }
    value = v;
  }
  const complaint = o.refine?.(value);
  if (complaint) fail(`option ${o.name} ${complaint}, got ${value}`, o.name);
  return value;
}

/**
 * Fills in the defaults and checks every option given (options the chosen loss does not use are
 * checked too, then ignored). Unknown option names are an error, so a misspelt option cannot
 * silently fall back to its default; so is a missing option the loss requires.
 */
export function resolvePreferenceOptions(options: RegisteredLossOptions): ResolvedPreferenceOptions;
export function resolvePreferenceOptions(options?: PreferenceLossOptions): ResolvedBuiltinOptions;
export function resolvePreferenceOptions(
  options: PreferenceLossOptions | RegisteredLossOptions = {},
): ResolvedPreferenceOptions {
  if (options === null || typeof options !== "object")
    fail(`options must be an object, got ${options === null ? "null" : typeof options}`);
  const given = options as Record<string, unknown>;
  const known = optionNames();
  for (const key of Object.keys(given)) {
    if (!known.includes(key)) {
      const near = nearestKey(key, known);
      fail(
        `unknown option '${key}'${near ? ` (did you mean '${near}'?)` : ""}; known options: ${known.join(", ")}`,
        key,
      );
    }
  }
  const absent = (v: unknown) => v === undefined || v === null;
  const name = absent(given.lossType) ? DEFAULT_LOSS : given.lossType;
  const loss = typeof name === "string" ? lossSpec(name) : undefined;
  if (!loss) {
    const names = registeredLosses().flatMap((l) => [l.name, ...l.aliases, ...(l.trlLossType ? [l.trlLossType] : [])]);
    const near = typeof name === "string" ? nearestKey(name, names) : undefined;
    fail(
      `option lossType must be one of ${registeredLosses()
        .map((l) => l.name)
        .join(", ")} (or TRL's loss_type names), ` +
        `got ${JSON.stringify(given.lossType)}${near ? ` (did you mean '${near}'?)` : ""}`,
      "lossType",
    );
  }

  const resolved: Record<string, OptionValue> = {
    lossType: loss.name,
    beta: absent(given.beta) ? loss.beta.default : checkNumber("beta", given.beta, "positive"),
  };
  for (const o of registeredOptions()) {
    const v = given[o.name];
    if (!absent(v)) resolved[o.name] = checkValue(o, v);
    else if (o.required && loss.options.includes(o))
      fail(`lossType ${loss.name} needs option ${o.name} (${o.required})`, o.name);
    else resolved[o.name] = o.default;
  }
  if (!absent(given.validate) && typeof given.validate !== "boolean")
    fail(`option validate must be true or false, got ${JSON.stringify(given.validate)}`, "validate");
  resolved.validate = (given.validate as boolean | undefined) ?? true;

  const wrong = loss.validate?.(resolved as LossOptions);
  if (wrong) fail(`option ${wrong.option} ${wrong.message}, got ${resolved[wrong.option]}`, wrong.option);
  return resolved as ResolvedPreferenceOptions;
}

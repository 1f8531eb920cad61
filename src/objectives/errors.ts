// The one error the objectives throw. Callers read its fields (which option, YAML key, input
// or loss went wrong) instead of parsing the message.

/** Where the error was raised: the public function the caller called. */
export type ObjectiveErrorSource = "preferenceLoss" | "objectiveFromConfig" | "registerLoss";

export interface ObjectiveErrorFields {
  /** The preferenceLoss option at fault (e.g. "qualEta", "my_margin"). */
  option?: string;
  /** The reference YAML key at fault (e.g. "uni_dpo_tau_good"). */
  key?: string;
  /** The input tensor at fault (e.g. "scoreChosen"). */
  input?: string;
  /** The loss concerned (e.g. the one being registered). */
  loss?: string;
}

export class ObjectiveError extends Error implements ObjectiveErrorFields {
  readonly source: ObjectiveErrorSource;
  /** The message without the "source: " prefix. */
  readonly detail: string;
  readonly option?: string;
  readonly key?: string;
  readonly input?: string;
  readonly loss?: string;

  constructor(source: ObjectiveErrorSource, detail: string, fields: ObjectiveErrorFields = {}) {
    super(`${source}: ${detail}`);
    this.name = "ObjectiveError";
    this.source = source;
    this.detail = detail;
    for (const k of ["option", "key", "input", "loss"] as const) if (fields[k] !== undefined) this[k] = fields[k];
  }
}

// The steps of a worked solution as data, their text, and the parsing of a model's response back
// into steps. A response is the steps separated by single spaces, the last one the final answer,
// then "." to end it:  " 7+5+0=12 4+8+1=13 A=132."
//   add/sum column  "7+5+0=12"   digits of the column, then the carry in; the result's tens are the carry out
//   sub column      "12-7-0=5"   top digit (plus 10 when it borrows), bottom digit, borrow in; result digit
//   mul column      "7*6+0=42"   multiplicand digit * multiplier digit + carry in
//   partial product "P=1410"     a row of a long multiplication, shifted (trailing zeros written)
//   final answer    "A=132"      then the terminator "."

/** One step of the column method. */
export type Step =
  | { kind: "add"; terms: number[]; carry: number; result: number }
  | { kind: "sub"; top: number; bottom: number; borrow: number; result: number }
  | { kind: "mul"; digit: number; multiplier: number; carry: number; result: number }
  | { kind: "partial"; value: number }
  | { kind: "answer"; value: number };

export type StepKind = Step["kind"];

/** Ends a response, right after the final answer. */
export const TERMINATOR = ".";
/** Starts the final answer step. */
export const ANSWER_MARKER = "A=";
/** Starts a partial-product step. */
export const PARTIAL_MARKER = "P=";

/** The text of one step. */
export function formatStep(step: Step): string {
  switch (step.kind) {
    case "add":
      return `${[...step.terms, step.carry].join("+")}=${step.result}`;
    case "sub":
      return `${step.top}-${step.bottom}-${step.borrow}=${step.result}`;
    case "mul":
      return `${step.digit}*${step.multiplier}+${step.carry}=${step.result}`;
    case "partial":
      return `${PARTIAL_MARKER}${step.value}`;
    case "answer":
      return `${ANSWER_MARKER}${step.value}`;
  }
}

/** The response text of a list of steps (the last should be the answer): a leading space, steps, ".". */
export function formatSteps(steps: readonly Step[]): string {
  return " " + steps.map(formatStep).join(" ") + TERMINATOR;
}

// Numbers in steps: at most 15 digits, so they stay exact; anything longer is not a step.
const N = "(\\d{1,15})";
const ADD_RE = new RegExp(`^${N}((?:\\+${N})+)=${N}$`);
const SUB_RE = new RegExp(`^${N}-${N}-${N}=${N}$`);
const MUL_RE = new RegExp(`^${N}\\*${N}\\+${N}=${N}$`);
const PARTIAL_RE = new RegExp(`^P=${N}$`);
const ANSWER_RE = new RegExp(`^A=(-?\\d{1,15})$`);

/** The step a token writes, or undefined when it is not one. */
export function parseStep(token: string): Step | undefined {
  let m: RegExpExecArray | null;
  if (ADD_RE.test(token)) {
    const numbers = token.slice(0, token.indexOf("=")).split("+").map(Number);
    return {
      kind: "add",
      terms: numbers.slice(0, -1),
      carry: numbers[numbers.length - 1]!,
      result: Number(token.slice(token.indexOf("=") + 1)),
    };
  }
  if ((m = SUB_RE.exec(token)))
    return { kind: "sub", top: Number(m[1]), bottom: Number(m[2]), borrow: Number(m[3]), result: Number(m[4]) };
  if ((m = MUL_RE.exec(token)))
    return { kind: "mul", digit: Number(m[1]), multiplier: Number(m[2]), carry: Number(m[3]), result: Number(m[4]) };
  if ((m = PARTIAL_RE.exec(token))) return { kind: "partial", value: Number(m[1]) };
  if ((m = ANSWER_RE.exec(token))) return { kind: "answer", value: Number(m[1]) };
  return undefined;
}

/** Whether two steps say the same thing. */
export function stepsEqual(x: Step, y: Step): boolean {
  if (x.kind !== y.kind) return false;
  switch (x.kind) {
    case "add": {
      const o = y as typeof x;
      return (
        x.carry === o.carry &&
        x.result === o.result &&
        x.terms.length === o.terms.length &&
        x.terms.every((t, i) => t === o.terms[i])
      );
    }
    case "sub": {
      const o = y as typeof x;
      return x.top === o.top && x.bottom === o.bottom && x.borrow === o.borrow && x.result === o.result;
    }
    case "mul": {
      const o = y as typeof x;
      return x.digit === o.digit && x.multiplier === o.multiplier && x.carry === o.carry && x.result === o.result;
    }
    case "partial":
    case "answer":
      return x.value === (y as typeof x).value;
  }
}

/** A response read back into steps. */
export interface ParsedResponse {
  /** The tokens before the final answer, in order; undefined where a token is not a step. */
  steps: (Step | undefined)[];
  /** The tokens themselves, as written (parallel to `steps`). */
  tokens: string[];
  /** The final answer: the last token before the terminator, when it is "A=<integer>". */
  answer: number | undefined;
  /** Whether the response has the terminator "." . */
  terminated: boolean;
  /** What follows the terminator (end-of-sequence and padding tokens removed). */
  trailing: string;
  /** Why the response is not in the expected form; empty when it is. */
  malformed: string[];
}

const LEADING_SPECIALS = /^(?:<s>|<pad>)+/;
const TRAILING_SPECIALS = /(?:<\/s>|<pad>)+$/;

/**
 * Reads a response (the text after the prompt) into steps. Never throws: anything unexpected is
 * reported in `malformed`. A BOS at the start and EOS/padding at the end, as a decode that keeps
 * special tokens leaves them, are ignored.
 */
export function parseResponse(response: string): ParsedResponse {
  const text = String(response ?? "")
    .replace(LEADING_SPECIALS, "")
    .replace(TRAILING_SPECIALS, "");
  const malformed: string[] = [];
  const end = text.indexOf(TERMINATOR);
  const terminated = end >= 0;
  const body = (terminated ? text.slice(0, end) : text).trim();
  const trailing = terminated ? text.slice(end + 1) : "";
  if (!terminated) malformed.push(`no terminator "${TERMINATOR}" (truncated?)`);
  if (trailing.trim().length > 0) malformed.push(`text after the terminator: ${JSON.stringify(trailing.slice(0, 40))}`);
  const tokens = body.length === 0 ? [] : body.split(/\s+/);
  if (/\s\s|[^ \S]/.test(body)) malformed.push("irregular spacing");
  let answer: number | undefined;
  const last = tokens.length > 0 ? parseStep(tokens[tokens.length - 1]!) : undefined;
  if (last?.kind === "answer") {
    answer = last.value;
    tokens.pop();
  } else {
    malformed.push("no final answer");
  }
  const steps = tokens.map(parseStep);
  const bad = tokens.filter((_, i) => steps[i] === undefined);
  if (bad.length > 0)
    malformed.push(
      `not steps: ${bad
        .slice(0, 3)
        .map((t) => JSON.stringify(t.slice(0, 20)))
        .join(", ")}${bad.length > 3 ? ", ..." : ""}`,
    );
  return { steps, tokens, answer, terminated, trailing, malformed };
}

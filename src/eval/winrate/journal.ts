// The journal of a win-rate evaluation: one JSON line per finished piece of work (an answer
// generated, a pair judged), fsynced as it is written, so a run that is killed continues where it
// stopped. Its first line names the evaluation (a hash of its prompts, answers, judge and
// settings): a journal of another evaluation is refused rather than mixed in.
import { createHash } from "node:crypto";
import { appendLinesDurable, readJournalLines } from "../../util/files.js";

const KIND = "omni-dpo eval winrate";

/** A short, stable hash of anything JSON can hold. */
export function identityHash(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 32);
}

export interface JournalLine {
  /** What the line records ("answer", "judged"). */
  kind: string;
  /** The prompt's index. */
  i: number;
  [field: string]: unknown;
}

export class WinRateJournal {
  readonly #lines: { line: JournalLine; at: string }[];

  private constructor(
    readonly file: string,
    lines: { line: JournalLine; at: string }[],
  ) {
    this.#lines = lines;
  }

  /** Reads the journal in `file` (starting one when there is none) for the evaluation `identity`. */
  static open(file: string, identity: string): WinRateJournal {
    const lines = readJournalLines(file);
    if (lines.length === 0) {
      appendLinesDurable(file, [JSON.stringify({ journal: KIND, identity })]);
      return new WinRateJournal(file, []);
    }
    type Header = { journal?: unknown; identity?: unknown } | null;
    let header: Header = null;
    try {
      header = JSON.parse(lines[0]) as Header;
    } catch {
      /* refused below */
    }
    if (header?.journal !== KIND || header.identity !== identity) {
      throw new Error(
        `${file}: this journal belongs to another evaluation (other prompts, answers, judge or settings)` +
          `${header?.journal === KIND ? "" : ", or is not a win-rate journal (line 1)"}; ` +
          "delete it to start over, or run with the settings it was made with",
      );
    }
    const parsed = lines.slice(1).map((text, n) => {
      const at = `${file}:${n + 2}`;
      let line: JournalLine;
      try {
        line = JSON.parse(text) as JournalLine;
      } catch (e) {
        throw new Error(`${at}: not valid JSON (${(e as Error).message}); not a line this evaluation wrote`, {
          cause: e,
        });
      }
      if (typeof line !== "object" || line === null || typeof line.kind !== "string" || !Number.isInteger(line.i)) {
        throw new Error(`${at}: expected an object with 'kind' and an integer 'i'; not a line this evaluation wrote`);
      }
      return { line, at };
    });
    return new WinRateJournal(file, parsed);
  }

  /** The lines of one kind, with where each is ("file:line") for errors. */
  entries(kind: string): { line: JournalLine; at: string }[] {
    return this.#lines.filter((l) => l.line.kind === kind);
  }

  append(lines: JournalLine[]): void {
    appendLinesDurable(
      this.file,
      lines.map((l) => JSON.stringify(l)),
    );
  }
}

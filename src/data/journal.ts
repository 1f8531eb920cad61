// A journal of finished work items, one JSON line each, behind a header line that names the kind
// of work and a hash of its inputs and settings. Long jobs (math evaluation, math data building)
// append each finished item durably, so a job killed at any moment continues where it stopped;
// a journal written by other work is refused, never overwritten.
import { appendLinesDurable, readJournalLines } from "../util/files.js";
import { DataError } from "./records.js";

export interface RecordJournal<T> {
  /** Items finished by earlier runs, by key. */
  readonly done: Map<number, T>;
  /** Appends finished items durably (and records them in `done`). */
  append(items: T[]): void;
}

export interface JournalSpec<T> {
  /** The kind of work ("omni-dpo eval math"). */
  kind: string;
  /** A hash of everything the work depends on; another identity means other work. */
  identity: string;
  /** An item's key (its problem's index). */
  key: (item: T) => number;
  /** What a journal of other work is told ("this file holds another evaluation ...; choose another --out"). */
  otherWork: string;
  /** What the user can do about a damaged line. */
  damagedHint?: string;
}

/** Opens (or starts) the journal at `file`. */
export function openRecordJournal<T>(file: string, spec: JournalSpec<T>): RecordJournal<T> {
  const lines = readJournalLines(file);
  const done = new Map<number, T>();
  if (lines.length === 0) {
    appendLinesDurable(file, [JSON.stringify({ journal: spec.kind, identity: spec.identity })]);
  } else {
    let header: { journal?: string; identity?: string } = {};
    try {
      header = JSON.parse(lines[0]);
    } catch {
      /* reported below */
    }
    if (header.journal !== spec.kind || header.identity !== spec.identity) {
      throw new DataError([`${file}: ${spec.otherWork}`]);
    }
    lines.slice(1).forEach((line, n) => {
      let item: T;
      try {
        item = JSON.parse(line) as T;
      } catch (e) {
        const hint = spec.damagedHint ? `; ${spec.damagedHint}` : "";
        throw new DataError([`${file}:${n + 2}: not valid JSON (${(e as Error).message})${hint}`]);
      }
      done.set(spec.key(item), item);
    });
  }
  return {
    done,
    append(items) {
      appendLinesDurable(
        file,
        items.map((item) => JSON.stringify(item)),
      );
      for (const item of items) done.set(spec.key(item), item);
    },
  };
}

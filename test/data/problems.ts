// What the data tests assert about a bad file: the DataError's list of problems.
import assert from "node:assert/strict";
import { DataError } from "../../src/data/records.js";

/** The problems of a DataError thrown by `fn` (fails when nothing or something else is thrown). */
export async function problemsOf(fn: () => unknown): Promise<string[]> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
    return e.problems;
  }
  assert.fail("expected a DataError, but reading succeeded");
}

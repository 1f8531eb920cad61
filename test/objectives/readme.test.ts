// The README's table of losses is the one the loss declarations give: a loss, an option or a
// default changed in src/objectives without the README fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { lossTable } from "../../src/objectives/table.js";
import { packageRoot } from "../../src/util/package-root.js";

const BEGIN =
  "<!-- loss table: written by lossTable() from src/objectives; test/objectives/readme.test.ts checks it -->";
const END = "<!-- end of loss table -->";

test("README.md's table of losses is lossTable()", () => {
  const readme = readFileSync(join(packageRoot(), "README.md"), "utf8");
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  assert.ok(start >= 0 && end > start, `README.md must hold the table between the lines\n${BEGIN}\n${END}`);
  const table = readme.slice(start + BEGIN.length, end).trim();
  assert.equal(table, lossTable().trim(), `README.md's loss table is out of date; replace it with:\n${lossTable()}`);
});

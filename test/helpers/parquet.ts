// Writes preference rows to a Parquet file laid out as Hugging Face datasets lay theirs out:
// text columns as UTF-8 strings, scores as DOUBLE (which can hold NaN, unlike JSON), and message
// lists as list<struct<content: string, role: string>>.
import { parquetWriteFile } from "hyparquet-writer";

type Column = "string" | "double" | "messages";

function kindOf(name: string, values: unknown[]): Column {
  const present = values.filter((v) => v !== undefined && v !== null);
  if (present.length === 0) return "string";
  if (present.every((v) => typeof v === "number")) return "double";
  if (present.every((v) => typeof v === "string")) return "string";
  if (present.every((v) => Array.isArray(v))) return "messages";
  throw new Error(`writePreferenceParquet: column '${name}' mixes types; Parquet needs one type per column`);
}

/** Writes `rows` (objects with the same keys) to `file`; a key missing from a row is written as null. */
export function writePreferenceParquet(file: string, rows: Record<string, unknown>[]): string {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const schema: Record<string, unknown>[] = [{ name: "root", num_children: names.length }];
  const columnData = names.map((name) => {
    const values = rows.map((r) => r[name] ?? null);
    const kind = kindOf(name, values);
    if (kind === "string")
      schema.push({ name, type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" });
    else if (kind === "double") schema.push({ name, type: "DOUBLE", repetition_type: "OPTIONAL" });
    else {
      schema.push(
        { name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
        { name: "content", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
        { name: "role", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
      );
    }
    return { name, data: values };
  });
  // The schema elements follow hyparquet's SchemaElement shape; the writer checks them at run time.
  parquetWriteFile({ filename: file, columnData, schema } as unknown as Parameters<typeof parquetWriteFile>[0]);
  return file;
}

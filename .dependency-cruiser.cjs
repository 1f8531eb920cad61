// The import rules `npm run lint` checks (dependency-cruiser): no import cycle, at run time or in
// types; the library's layers, each importing only those below it; apps use the library, never
// the reverse. README.md's layout section lists the layers.

/**
 * The library's layers, lowest first: a module may import its own layer and those before it.
 * logprobs (forward passes to log-probs, a micro-batch to a loss's inputs) sits above data and
 * objectives: it takes tokenized batches and builds the inputs an objective declares. generation
 * (samplers: the in-process engine, an OpenAI-compatible endpoint, serve) sits on models and text;
 * data building and evaluation take a generator.
 */
const LAYERS = [
  "util",
  "torch",
  "nn",
  "text",
  "models",
  "generation",
  "objectives",
  "data",
  "logprobs",
  "eval",
  "train",
  "report",
  "cli",
];

const layerPath = (names) => `^src/(${names.join("|")})/`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-cycle",
      comment: "A cycle of imports (type-only ones included) ties its modules into one: break it.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "library-not-apps",
      comment: "The library (src/) never imports the apps (apps/): they use it.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^apps/" },
    },
    {
      name: "entry-on-top",
      comment: "src/index.ts is the public entry: nothing in the library imports it.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^src/index\\.ts$" },
    },
    ...LAYERS.slice(0, -1).map((layer, i) => ({
      name: `layer-${layer}`,
      comment: `src/${layer}/ imports only ${LAYERS.slice(0, i).join(", ") || "nothing of the library but itself"} (layers below it).`,
      severity: "error",
      from: { path: layerPath([layer]) },
      to: { path: layerPath(LAYERS.slice(i + 1)) },
    })),
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(dist|node_modules|native)/" },
    // Type-only imports count: a cycle in types is a cycle.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    moduleSystems: ["es6"],
  },
};

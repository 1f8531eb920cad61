// ESLint (flat config) for the library, the apps, the tests and the scripts: the recommended
// rules of ESLint and typescript-eslint, plus a few that catch real mistakes here (a promise
// nobody awaits, an unused name) or keep imports honest (type-only imports say so). Import
// layers and cycles are dependency-cruiser's (.dependency-cruiser.cjs); layout is prettier's.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "native/build/", "runs/", ".scratch/", "omni-dpo-demo/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: globals.node } },
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      // Loaded-JSON and addon boundaries are typed by hand; `any` there is deliberate.
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
  {
    // The rules that need types, where a dropped promise loses an error: the library and the apps
    // (type information costs most of lint's time; the tests' promises are node:test's).
    files: ["src/**/*.ts", "apps/**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: { "@typescript-eslint/no-floating-promises": "error" },
  },
  {
    // CommonJS: the addon's install scripts and the dependency-cruiser config.
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs" },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
);

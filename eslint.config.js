// Lint rules that catch real bugs in async, typed code (STYLE.md): floating and misused promises, unhandled
// switch cases. Type-aware through the project's tsconfig files.
// Import zones keep the layer map of ../shared/DESIGN.md and docs/architecture.md (issue 10):
//   cli → client / server / tracker / box → peer / store / kascade / hashing → util
// (errors, limits, log and version at the top of src/ are the shared base every layer may use). Nothing imports
// upward; kascade/ uses no other part; workers/ import nothing from src/client or src/store. The sideways edges
// the design describes stay open: the client runs the block server and announces through the tracker client,
// the box drives the client's engine, the server and the announcers, hashing creates kascades.
import tseslint from 'typescript-eslint';

const PARTS = ['cli', 'client', 'server', 'tracker', 'box', 'peer', 'store', 'kascade', 'hashing', 'util'];

/** A `no-restricted-imports` group refusing relative imports of `part` (prefix: the way up to src/). */
const refuse = (part, prefix, why) => ({ group: [`${prefix}${part}`, `${prefix}${part}/**`], message: why });

/** The rule for the files of src/<folder>: it may not import any part in `forbidden`. */
function zone(folder, forbidden) {
  const why = (part) => `src/${folder} must not import src/${part} (layer map in docs/architecture.md)`;
  const patterns = forbidden.map((p) => refuse(p, '../', why(p)));
  return ['error', { patterns }];
}

const ABOVE_L1 = ['cli', 'client', 'server', 'tracker', 'box'];
const ZONES = {
  util: PARTS.filter((p) => p !== 'util'),
  kascade: PARTS.filter((p) => p !== 'kascade' && p !== 'util'),
  // Layer 1 parts use kascade (the value object) and util, never each other's insides.
  peer: [...ABOVE_L1, 'store', 'hashing'],
  store: [...ABOVE_L1, 'peer', 'hashing'],
  hashing: [...ABOVE_L1, 'peer', 'store'],
  client: ['cli', 'box'],
  server: ['cli', 'client', 'tracker', 'box'],
  tracker: ['cli', 'client', 'server', 'box'],
  box: ['cli'],
  // The control API (issue 12) may use box, client, server, store, kascade, util and the shared base.
  api: ['cli', 'tracker', 'peer', 'hashing'],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/**', 'eslint.config.js', 'vitest.config.ts', 'scripts/*.mjs'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  ...Object.entries(ZONES).map(([folder, forbidden]) => ({
    files: [`src/${folder}/**/*.ts`],
    rules: { 'no-restricted-imports': zone(folder, forbidden) },
  })),
  {
    files: ['workers/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['client', 'store'].map((p) => refuse(p, '../src/', `workers/ must not import src/${p} (STYLE.md: workers stay independent)`)) },
      ],
    },
  },
);

// `npm run mutate`: a mutation run (Stryker + its vitest runner) over the modules that hold kfetch's rules — the
// checkpointer (fdatasync before commit), the worker's verify-and-write (never write a block that failed its MD5),
// the picker — and the pure parsers of untrusted input. It shows what no test would notice; it is not part of
// `npm test`/CI (about 20-30 minutes on a 2-core machine). Only unit and fuzz tests run: no child processes,
// no dist/ build (the mutated code is the TypeScript vitest loads). Report: reports/mutation/.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.config.ts', related: false },
  mutate: [
    'src/client/checkpointer.ts',
    'workers/block-write.ts',
    'src/client/picker.ts',
    'src/client/rarity-buckets.ts',
    'src/kascade/parse.ts',
    'src/tracker/parse-reply.ts',
    'src/tracker/parse-announce.ts',
    'src/server/parse-request.ts',
    'src/peer/response-parser.ts',
  ],
  testFiles: [
    'test/unit/client-checkpointer.test.ts',
    'test/unit/workers-block-write.test.ts',
    'test/unit/client-picker.test.ts',
    'test/unit/client-picker-edges.test.ts',
    'test/unit/kascade-parse.test.ts',
    'test/unit/kascade-corpus.test.ts',
    'test/unit/kascade-spec-vectors.test.ts',
    'test/unit/tracker-parse-reply.test.ts',
    'test/unit/tracker-parse-announce.test.ts',
    'test/unit/server-parse-request.test.ts',
    'test/unit/peer-response-parser.test.ts',
    'test/unit/parser-edges.test.ts',
    'test/fuzz/*.test.ts',
  ],
  coverageAnalysis: 'perTest',
  // A static mutant (a module-level constant) re-runs every test: few are worth that cost here.
  ignoreStatic: true,
  concurrency: 1,
  timeoutMS: 10_000,
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['dist', 'reports', 'bench/results', '*.log'],
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 80, low: 60, break: null },
};

// The `create` benchmark alone (kept for `node dist/bench/create.js [--size MiB] [--runs N]`): now the `create`
// scenario of bench/run.ts, with the ceilings, the table and bench/results/create-<date>.json.

import { main } from './run.js';

process.exit(await main(['create', '--name', 'create', ...process.argv.slice(2)]));

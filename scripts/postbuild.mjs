// After tsc: make the bin executable (a clean clone's `npm ci` must leave a runnable `kfetch`).
import { chmodSync } from 'node:fs';
chmodSync(new URL('../dist/src/cli/main.js', import.meta.url), 0o755);

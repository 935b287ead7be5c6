// Spawn any program that prints `listening on http://HOST:PORT` (kfetch, bench/static-server.js) and wait for it,
// registering the child for the final kill. The waiting is src/cli/local-swarm.ts's spawnListening.

import type { ChildProcess } from 'node:child_process';
import { spawnListening as spawnAndWait } from '../../src/cli/local-swarm.js';
import { trackChild } from '../measure.js';

/** Start `cmd args` and wait (at most `timeoutMs`) for its `listening on` line. */
export function spawnListening(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<{ proc: ChildProcess; url: string }> {
  return spawnAndWait(cmd, args, env, timeoutMs, (proc) => void trackChild(proc));
}

// Builds dist/ once per test run (workers and the CLI bin run from the build), unless KFETCH_SKIP_BUILD=1
// says the caller (npm test) already built it.

import { execFileSync } from 'node:child_process';

export default function setup(): void {
  if (process.env.KFETCH_SKIP_BUILD === '1') return;
  execFileSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
}

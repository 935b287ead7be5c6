// Issue 10 point 15 at the command line: `--peer` goes through the same address policy as a .kascade's peers.

import { describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import { testScope } from '../helpers/test-scope.js';

testScope();

describe('--peer and the address policy (issue 10 point 15)', () => {
  it.each([
    ['169.254.169.254:80', /link-local/],
    ['0.0.0.0:1', /unspecified/],
    ['2852039166:80', /not an IP address or a DNS name/],
  ])('refuses --peer %s as a usage error', async (peer, why) => {
    const run = startCli(['get', 'never-read.json', '--peer', peer]);
    expect(await run.exited(15_000)).toBe(2);
    expect(run.stderr()).toContain(`"${peer}"`);
    expect(run.stderr()).toMatch(why);
  });
});

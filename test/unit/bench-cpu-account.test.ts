// The bench's CPU account (issue 11): kfetch's in-process breakdown is read from the `--json` `done` event's `cpu`
// (absent on builds without it: the table prints "—"), and "other" is user + sys less the named parts.

import type { Measured } from '../../bench/measure.js';
import { formatTable, type Report } from '../../bench/report.js';
import { doneCpuOf, rowFrom, type KfetchMeasured } from '../../bench/scenarios/common.js';
import { expect, it } from 'vitest';

const cpu = { user: 3, sys: 1, receive: 0.5, md5: 1.25, sha256: 0.5, write: 0.25, checkpoint: 0.125 };
const done = (extra: Record<string, unknown>): string => JSON.stringify({ v: 1, event: 'done', id: 1, size: 1, seconds: 1, ...extra });

it('doneCpuOf reads the done event\'s cpu and nothing else', () => {
  expect(doneCpuOf(done({ cpu }))).toEqual(cpu);
  // Extra fields (kfetch's own `other`) are ignored; `startup` is kept where reported.
  expect(doneCpuOf(done({ cpu: { ...cpu, startup: 0.5, other: 9 } }))).toEqual({ ...cpu, startup: 0.5 });
  expect(doneCpuOf(done({}))).toBeUndefined();
  expect(doneCpuOf(done({ cpu: { ...cpu, md5: 'x' } }))).toBeUndefined();
  expect(doneCpuOf(done({ cpu: { ...cpu, sha256: undefined } }))).toBeUndefined();
  expect(doneCpuOf(JSON.stringify({ v: 1, event: 'progress', cpu, note: 'done' }))).toBeUndefined();
  expect(doneCpuOf('done {not json')).toBeUndefined();
});

function measured(doneCpu?: typeof cpu & { startup?: number }): KfetchMeasured {
  const m: Measured = { code: 0, signal: null, seconds: 2, peakRssMiB: 100, cpuSeconds: 4.5, userSeconds: 3.25, sysSeconds: 1.25, stdout: '', stderr: '' };
  return doneCpu === undefined ? m : { ...m, doneCpu };
}

it('rowFrom puts the breakdown per GiB in the row, with other = user + sys - the parts; without it the table says —', () => {
  const row = rowFrom('mirrors', 'kfetch get', 512, [measured(cpu)]);
  expect(row.cpu).toEqual({
    user: 6.5,
    sys: 2.5,
    parts: { receive: 1, md5: 2.5, sha256: 1, write: 0.5, checkpoint: 0.25, other: 2.75 },
  });
  // One run without the field: no breakdown (a median over part of the runs would mislead).
  expect(rowFrom('mirrors', 'kfetch get', 512, [measured(cpu), measured()]).cpu?.parts).toBeUndefined();
  const bare = rowFrom('mirrors', 'aria2c', 512, [measured()]);
  bare.cpu!.served = { by: '4 nginx', user: 0.1, sys: 0.4 };
  const report: Report = {
    name: 't', date: '2026-01-01T00:00:00.000Z',
    machine: { cores: 2, cpu: 'x', memGiB: 1, node: 'v20', platform: 'linux', loadAverage: { before: [0], after: [0] } },
    args: {}, ceilings: { cores: 2, md5PerCore: 1, sha256PerCore: 1, writeNoSync: 1, writeFdatasync: 1, loopbackHttp: 1 },
    rows: [row, bare], targets: [], notes: [],
  };
  const text = formatTable(report);
  expect(text).toContain('| mirrors | kfetch get | 6.50 | 2.50 | 9.00 | 1.00 | 2.50 | 1.00 | 0.50 | 0.25 | — | — | 2.75 | — | — | — | — |');
  expect(text).toContain('| mirrors | aria2c | 6.50 | 2.50 | 9.00 | — | — | — | — | — | — | — | — | 4 nginx | 0.10 | 0.40 | 0.50 |');
  // With startup reported, it is a part of its own and out of `other`.
  const withStartup = rowFrom('mirrors', 'kfetch get', 512, [measured({ ...cpu, startup: 0.5 })]);
  expect(withStartup.cpu?.parts).toEqual({ receive: 1, md5: 2.5, sha256: 1, write: 0.5, checkpoint: 0.25, startup: 1, other: 1.75 });
  // With dispatch reported too, it is out of `other` as well.
  const withDispatch = rowFrom('mirrors', 'kfetch get', 512, [measured({ ...cpu, startup: 0.5, dispatch: 0.25 } as typeof cpu)]);
  expect(withDispatch.cpu?.parts).toEqual({ receive: 1, md5: 2.5, sha256: 1, write: 0.5, checkpoint: 0.25, startup: 1, dispatch: 0.5, other: 1.25 });
});

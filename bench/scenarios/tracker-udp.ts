// `tracker-udp` (issue 14 point 4, the tracker half): one `kfetch tracker --udp-port 0` (memory store), loaded in
// turn over HTTP (keep-alive) and over UDP, one announce at a time per lane (bench/udp-tracker-quick.ts):
// announces/s, the tracker's CPU µs per announce, and application bytes per announce. Target: UDP announces cost
// ≤ 0.5 × the CPU of HTTP announces.

import { round, type Row } from '../report.js';
import type { ScenarioContext, ScenarioResult } from './common.js';
import type { Figures as Side } from '../udp-tracker-quick.js';
import { runMeasure } from './wire-bench-child.js';

export async function trackerUdp(ctx: ScenarioContext): Promise<ScenarioResult> {
  const seconds = ctx.opts.quick ? 2 : 10;
  ctx.log(`tracker-udp: HTTP then UDP, 32 lanes, ${seconds} s each`);
  const r = await runMeasure<{ lanes: number; swarms: number; http: Side; udp: Side; udpCpuVsHttp: number; udpBytesVsHttp: number }>(
    'udp-tracker-quick',
    ['--seconds', String(seconds)],
    (seconds * 2 + 60) * 1000,
  );
  const row = (name: string, s: Side): Row => ({
    scenario: 'tracker-udp',
    tool: `kfetch tracker over ${name}`,
    sizeMiB: 0,
    extra: {
      'announces/s': s.announcesPerSecond,
      'CPU µs/announce': s.trackerCpuUsPerAnnounce,
      'of which sys': s.trackerSysUsPerAnnounce,
      'bytes/announce': s.bytesPerAnnounce,
      failures: s.failures,
    },
  });
  return {
    rows: [row('HTTP', r.http), row('UDP', r.udp)],
    targets: [
      {
        scenario: 'tracker-udp',
        text: 'UDP announces cost ≤ 0.5 × the CPU of HTTP announces',
        value: `${r.udp.trackerCpuUsPerAnnounce} vs ${r.http.trackerCpuUsPerAnnounce} µs = ${round(r.udpCpuVsHttp, 2)}×; bytes ${r.udp.bytesPerAnnounce} vs ${r.http.bytesPerAnnounce}`,
        met: r.udpCpuVsHttp <= 0.5,
      },
    ],
    notes: [
      `tracker-udp: ${r.lanes} lanes into ${r.swarms} swarms; bytes are request + reply at the application layer (IP/TCP/UDP headers and TCP ACKs not counted)`,
    ],
  };
}

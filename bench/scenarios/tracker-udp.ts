// `tracker-udp` (issue 14 point 4, the tracker half): one `kfetch tracker --udp-port 0` (memory store), loaded over
// HTTP (keep-alive) and over UDP in alternating rounds, one announce at a time per lane (bench/udp-tracker-quick.ts):
// announces/s, the tracker's CPU µs per announce, and application bytes per announce. Target: UDP announces cost
// ≤ 0.5 × the CPU of HTTP announces, judged on the median of the rounds' ratios (a single pair of runs on a shared
// 2-core box moved by ±30%).

import { round, type Row } from '../report.js';
import type { ScenarioContext, ScenarioResult } from './common.js';
import type { Figures as Side, Result } from '../udp-tracker-quick.js';
import { runMeasure } from './wire-bench-child.js';

export async function trackerUdp(ctx: ScenarioContext): Promise<ScenarioResult> {
  // --quick: a warm-up of 5,000 announces each, then 3 rounds of 0.5 s each (5-10 s in all); else about 35 s.
  const [rounds, seconds, warm] = ctx.opts.quick ? [3, 0.5, 0.5] : [7, 2, 1];
  ctx.log(`tracker-udp: HTTP and UDP alternating, 32 lanes, ${rounds} rounds of ${seconds} s each`);
  const r = await runMeasure<Result>(
    'udp-tracker-quick',
    ['--rounds', String(rounds), '--seconds', String(seconds), '--warm', String(warm)],
    (rounds * seconds * 2 + warm * 2 + 60) * 1000,
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
      'peers/reply': s.replyPeers,
      failures: s.failures,
    },
  });
  return {
    rows: [row('HTTP', r.http), row('UDP', r.udp)],
    targets: [
      {
        scenario: 'tracker-udp',
        text: 'UDP announces cost ≤ 0.5 × the CPU of HTTP announces',
        value:
          `median of ${r.rounds} rounds ${round(r.udpCpuVsHttp, 2)}× (spread ${r.udpCpuVsHttpMin}..${r.udpCpuVsHttpMax}); ` +
          `${r.udp.trackerCpuUsPerAnnounce} vs ${r.http.trackerCpuUsPerAnnounce} µs; bytes ${r.udp.bytesPerAnnounce} vs ${r.http.bytesPerAnnounce}`,
        met: r.udpCpuVsHttp <= 0.5,
      },
    ],
    notes: [
      `tracker-udp: ${r.lanes} lanes into ${r.swarms} swarms, ${r.rounds} alternating rounds of ${r.seconds} s per protocol (ABBA order); ` +
        `CPU figures are medians over the rounds, the ratio the median of the rounds' ratios (${r.roundRatios.join(', ')}); ` +
        `load average ${r.loadAverage.before.join('/')} before, ${r.loadAverage.after.join('/')} after (1/5/15 min, ${ctx.ceilings.cores} cores); ` +
        'bytes are request + reply at the application layer (IP/TCP/UDP headers and TCP ACKs not counted)',
    ],
  };
}

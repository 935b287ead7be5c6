// `npm run bench [-- [name...] [--size MiB] [--peers N] [--runs N] [--quick]]`: measures the machine's ceilings,
// then runs the scenarios (create, mirrors, swarm, swarm-shaped, rss, resume, tail, single-block, picker, md5,
// box-scale, box-soak, issue 12's box-api, api-sse and ui-table, issue 13's tracker, issue 14's tracker-udp, peer-wire and peer-wire-swarm) one after another, prints one table, the CPU
// account (CPU-s per GiB: downloader user/sys, kfetch's in-process breakdown, the servers' CPU per GiB served) and
// the targets as met / not met, and writes every figure to bench/results/<name>-<ISO date>.json (--results DIR, --name NAME; default bench). Anchors (aria2c, nginx,
// WebTorrent...: scripts/install-anchors.sh) missing on the machine are skipped and named; each runs in the fastest
// of a fixed set of configurations, calibrated at the start of its scenario and printed. A missed target never
// makes the exit status non-zero (only a scenario that fails does). On SIGINT/SIGTERM every child is killed and
// the shaped swarm's qdisc removed.

import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { measureCeilings } from './ceilings.js';
import { killAllChildren } from './measure.js';
import { formatTable, machineInfo, writeReport, type Report, type Row, type Target } from './report.js';
import { findAnchors, type BenchOptions, type Scenario } from './scenarios/common.js';
import { apiSse } from './scenarios/api-sse.js';
import { boxScale, boxSoak } from './scenarios/box.js';
import { boxApi } from './scenarios/box-api.js';
import { create } from './scenarios/create.js';
import { md5 } from './scenarios/md5.js';
import { mirrors } from './scenarios/mirrors.js';
import { picker } from './scenarios/picker.js';
import { resume } from './scenarios/resume.js';
import { rss } from './scenarios/rss.js';
import { singleBlock } from './scenarios/single-block.js';
import { swarm } from './scenarios/swarm.js';
import { swarmShaped } from './scenarios/swarm-shaped.js';
import { tail } from './scenarios/tail.js';
import { tracker } from './scenarios/tracker.js';
import { trackerUdp } from './scenarios/tracker-udp.js';
import { peerWire } from './scenarios/peer-wire.js';
import { peerWireSwarm } from './scenarios/peer-wire-swarm.js';
import { uiTable } from './scenarios/ui-table.js';

const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const SCENARIOS: Record<string, Scenario> = {
  create, mirrors, swarm, 'swarm-shaped': swarmShaped, rss, resume, tail, 'single-block': singleBlock, picker, md5, 'box-scale': boxScale, 'box-soak': boxSoak,
  'box-api': boxApi, 'api-sse': apiSse, 'ui-table': uiTable, tracker, 'tracker-udp': trackerUdp, 'peer-wire': peerWire,
  'peer-wire-swarm': peerWireSwarm,
};

function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number, got ${v}`);
  return n;
}

/** Run the benchmark with command-line `argv` (without node and the script); resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      size: { type: 'string' },
      peers: { type: 'string' },
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      name: { type: 'string', default: 'bench' },
      results: { type: 'string' },
      without: { type: 'string', default: '' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      `usage: npm run bench -- [scenario...] [--size MiB] [--peers N] [--runs N] [--quick] [--results DIR] [--name NAME] [--without nginx,aria2c,...]\n` +
        `scenarios: ${Object.keys(SCENARIOS).join(', ')} (a name filter: an exact name, else substrings; default all)\n` +
        `--quick: 64 MiB, 2 peers, 1 run (a smoke test, about a minute; swarm-shaped skipped); default 1024 MiB, 4 peers, 3 runs\n` +
        `swarm-shaped: 2 fast + 2 slow seeders capped with tc on lo (root only); default 1024 MiB, --size sets it\n` +
        `anchors: scripts/install-anchors.sh (aria2c, nginx, mktorrent, opentracker; WebTorrent over TCP with node-datachannel stubbed)\n`,
    );
    return 0;
  }
  const quick = values.quick;
  const opts: BenchOptions = {
    quick,
    sizeMiB: positiveInt('size', values.size, quick ? 64 : 1024),
    sizeExplicit: values.size !== undefined,
    peers: positiveInt('peers', values.peers, quick ? 2 : 4),
    runs: positiveInt('runs', values.runs, quick ? 1 : 3),
  };
  // A positional that is a scenario's exact name picks that one (`swarm` is not also `swarm-shaped`), else a substring.
  const picks = (n: string, p: string): boolean => (p in SCENARIOS ? n === p : n.includes(p));
  const names = Object.keys(SCENARIOS).filter((n) => positionals.length === 0 || positionals.some((p) => picks(n, p)));
  if (names.length === 0) throw new Error(`no scenario matches ${positionals.join(' ')}; there are ${Object.keys(SCENARIOS).join(', ')}`);

  const dir = mkdtempSync(join(tmpdir(), 'kfetch-bench-'));
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`bench: ${sig}, stopping children and removing ${dir}\n`);
    ac.abort();
    killAllChildren();
    rmSync(dir, { recursive: true, force: true });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const log = (m: string): void => void process.stderr.write(`bench: ${m}\n`);
  const loadBefore = loadavg();
  const rows: Row[] = [];
  const targets: Target[] = [];
  const notes: string[] = [];
  let failed = 0;
  try {
    const anchors = findAnchors(values.without.split(',').filter((w) => w !== ''));
    log(`anchors: ${Object.entries(anchors).map(([k, v]) => `${k}=${v}`).join(' ') || 'none'}`);
    log('measuring ceilings');
    const ceilings = await measureCeilings(dir, quick, ac.signal);
    for (const name of names) {
      log(`scenario ${name} (${opts.sizeMiB} MiB, ${opts.peers} peers, ${opts.runs} runs)`);
      try {
        const r = await SCENARIOS[name]!({ opts, dir, ceilings, anchors, signal: ac.signal, log });
        rows.push(...r.rows);
        targets.push(...r.targets);
        notes.push(...(r.notes ?? []));
      } catch (err) {
        failed++;
        const msg = err instanceof Error ? err.message : String(err);
        log(`scenario ${name} failed: ${msg}`);
        rows.push({ scenario: name, tool: '-', sizeMiB: opts.sizeMiB, skipped: `FAILED: ${msg.split('\n')[0]!.slice(0, 160)}` });
      } finally {
        // Nothing of one scenario may run into the next.
        killAllChildren();
      }
    }
    const report: Report = {
      name: values.name,
      date: new Date().toISOString(),
      machine: machineInfo(loadBefore, loadavg()),
      args: { ...opts, scenarios: names },
      ceilings,
      rows,
      targets,
      notes: [...notes, ...(quick ? ['--quick: small sizes, one run each; a smoke test, the targets are judged on 1 GiB runs'] : [])],
    };
    process.stdout.write(formatTable(report));
    process.stdout.write(`wrote ${writeReport(values.results ?? RESULTS, report)}\n`);
    return failed === 0 ? 0 : 1;
  } finally {
    killAllChildren();
    rmSync(dir, { recursive: true, force: true });
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      killAllChildren();
      process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(2);
    },
  );
}

// `kfetch status [--json]`: the downloads in --home with name, size, percent, state, peers, bytes fetched,
// bad blocks and banned peers. Reads the state database without taking the home lock (WAL readers are safe).
// While a seeding box runs on this home (<home>/box.json), its live state per kascade comes from its /status.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { StateDb, STATE_FILE } from '../../store/state-db.js';
import type { BoxStatus } from '../../box/box-status.js';
import { BOX_INFO_FILE, type BoxInfo } from '../../box/box-info.js';
import type { CommandContext } from '../context.js';

export function registerStatus(program: Command, ctx: CommandContext): void {
  program
    .command('status')
    .description('list the downloads kept in --home and how far each has got')
    .option('--json', 'print one JSON array of downloads on stdout (with a running box: each with its boxState and kascade path)', false)
    .action(async (flags: { json: boolean }) => {
      await runStatus(flags, ctx);
    });
}

/** The running box on this home and its live /status, if there is one (a stale box.json is reported as such). */
async function readBox(home: string): Promise<{ info: BoxInfo; live: BoxStatus | undefined; running: boolean } | undefined> {
  let info: BoxInfo;
  try {
    info = JSON.parse(readFileSync(join(home, BOX_INFO_FILE), 'utf8')) as BoxInfo;
  } catch {
    return undefined;
  }
  let running = false;
  try {
    process.kill(info.pid, 0);
    running = true;
  } catch {
    // no such process: the box died without cleaning up
  }
  if (!running) return { info, live: undefined, running };
  try {
    const res = await fetch(`${info.url}/status`, { signal: AbortSignal.timeout(2_000) });
    return { info, live: res.ok ? ((await res.json()) as BoxStatus) : undefined, running };
  } catch {
    return { info, live: undefined, running };
  }
}

async function runStatus(flags: { json: boolean }, ctx: CommandContext): Promise<void> {
  const home = ctx.globals().home;
  const box = await readBox(home);
  if (box !== undefined && !flags.json) {
    const { info, live, running } = box;
    if (!running) ctx.out.write(`box: not running (pid ${info.pid} ended without cleaning up ${BOX_INFO_FILE})\n`);
    else {
      ctx.out.write(`box: running (pid ${info.pid}) on ${info.url}, watching ${info.watch}, data in ${info.data}\n`);
      if (info.api !== undefined) ctx.out.write(`  control API ${info.api}/api/v1/ (the page: kfetch box ui)\n`);
      if (live !== undefined) {
        const { total, ...states } = live.kascades;
        const parts = Object.entries(states).map(([state, n]) => `${n} ${state}`);
        ctx.out.write(`  ${total ?? 0} kascades${parts.length > 0 ? `: ${parts.join(', ')}` : ''}; ${live.openDataFiles} data files open\n`);
        for (const f of live.files) {
          if (f.state !== 'rejected' && f.state !== 'failed' && f.state !== 'stalled') continue;
          const next = f.nextTry === undefined ? '' : ` (next try ${f.nextTry})`;
          ctx.out.write(`  ${f.state}: ${f.path}: ${f.error ?? ''}${next}\n`);
        }
      } else ctx.out.write('  (its /status did not answer)\n');
    }
  }
  const liveById = new Map<number, { state: string; path: string }>();
  for (const f of box?.live?.files ?? []) if (f.download !== undefined) liveById.set(f.download, { state: f.state, path: f.path });
  if (!existsSync(join(home, STATE_FILE))) {
    ctx.out.write(flags.json ? '[]\n' : `no downloads in ${home}\n`);
    return;
  }
  const db = StateDb.open(home, { readonly: true });
  try {
    const rows = db.listDownloads().map((r) => {
      const peers = db.peers(r.id);
      const have = r.blockCount === 0 ? 1 : r.complete.count / r.blockCount;
      return {
        id: r.id,
        name: r.filename,
        filehash: r.filehash,
        size: r.filesize,
        percent: Math.floor((r.status === 'complete' ? 1 : have) * 1000) / 10,
        state: r.status,
        ...(liveById.has(r.id) ? { boxState: liveById.get(r.id)!.state, kascadePath: liveById.get(r.id)!.path } : {}),
        path: r.dataPath,
        peers: peers.filter((p) => p.bannedAt === undefined).length,
        bytesFetched: r.bytesFetched,
        badBlocks: r.badBlocks,
        bannedPeers: peers.filter((p) => p.bannedAt !== undefined).map((p) => ({ peer: p.addr, reason: p.banReason })),
        error: r.error,
      };
    });
    if (flags.json) {
      ctx.out.write(`${JSON.stringify(rows)}\n`);
      return;
    }
    if (rows.length === 0) {
      ctx.out.write(`no downloads in ${home}\n`);
      return;
    }
    const lines = [['ID', 'NAME', 'SIZE', 'DONE', 'STATE', 'PEERS', 'FETCHED', 'BAD', 'BANNED']];
    for (const r of rows) {
      lines.push([
        String(r.id), r.name, mib(r.size), `${r.percent.toFixed(1)}%`, r.boxState ?? r.state, String(r.peers), mib(r.bytesFetched),
        String(r.badBlocks), String(r.bannedPeers.length),
      ]);
    }
    const widths = lines[0]!.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
    for (const l of lines) ctx.out.write(`${l.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()}\n`);
    for (const r of rows) if (r.error !== undefined && r.state !== 'complete') ctx.out.write(`  ${r.id}: ${r.error}\n`);
  } finally {
    db.close();
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

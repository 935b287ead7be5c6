// `kfetch status [--json]`: the downloads in --home with name, size, percent, state, peers, bytes fetched,
// bad blocks and banned peers. Reads the state database without taking the home lock (WAL readers are safe).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { StateDb, STATE_FILE } from '../../store/state-db.js';
import type { CommandContext } from '../context.js';

export function registerStatus(program: Command, ctx: CommandContext): void {
  program
    .command('status')
    .description('list the downloads kept in --home and how far each has got')
    .option('--json', 'print one JSON array of downloads on stdout', false)
    .action((flags: { json: boolean }) => {
      runStatus(flags, ctx);
    });
}

function runStatus(flags: { json: boolean }, ctx: CommandContext): void {
  const home = ctx.globals().home;
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
        String(r.id), r.name, mib(r.size), `${r.percent.toFixed(1)}%`, r.state, String(r.peers), mib(r.bytesFetched),
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

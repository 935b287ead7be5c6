// `kfetch box add|ls|pause|resume|verify|rm|ui`: drive a running seeding box (`kfetch seed --watch`) on this --home
// through its control API (docs/api.md). A kascade is named by its id, its file name in the watch folder, its data
// file name, or 8+ hex digits of its filehash.

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { KascadeRecord } from '../../api/kascade-record.js';
import { ENTRY_STATES } from '../../box/entry-state.js';
import { KfetchError, fromFsError } from '../../errors.js';
import { LIMITS } from '../../limits.js';
import { BoxClient } from '../box-client.js';
import type { CommandContext } from '../context.js';

type Page = { items: KascadeRecord[]; next: string | null; total: number };

export function registerBox(program: Command, ctx: CommandContext): void {
  const box = program
    .command('box')
    .description('drive the seeding box running on this --home (kfetch seed --watch) through its control API');
  const client = (): BoxClient => BoxClient.open(ctx.globals().home);
  const print = (json: boolean, value: unknown, line: string): void => void ctx.out.write(json ? `${JSON.stringify(value)}\n` : `${line}\n`);

  box
    .command('add')
    .description('add a .kascade to the box (written into its watch folder)')
    .argument('<file>', 'the .kascade file')
    .option('--paused', 'add it paused (neither fetched nor served until resumed)', false)
    .option('--json', 'print the API reply as JSON', false)
    .action(async (file: string, flags: { paused: boolean; json: boolean }) => {
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (err) {
        throw fromFsError(err, file, 'cannot read the kascade');
      }
      if (bytes.length > LIMITS.kascadeMaxBytes) throw new KfetchError('KF_E_KASCADE_TOO_LARGE', `${bytes.length} bytes`, { file });
      const r = await client().call<{ id: string; file: string; kascade: KascadeRecord }>('POST', `/kascades${flags.paused ? '?paused=true' : ''}`, { bytes, type: 'application/json' });
      print(flags.json, r, `added ${r.id} as ${r.file}${flags.paused ? ' (paused)' : ''}`);
    });

  box
    .command('ls')
    .description('list the kascades in the box')
    .option('--state <states>', `only these states, comma-separated (${ENTRY_STATES.filter((s) => s !== 'removed').join(', ')})`)
    .option('--json', 'print one JSON record per line', false)
    .action(async (flags: { state?: string; json: boolean }) => {
      const c = client();
      const items = await listAll(c, flags.state);
      if (flags.json) {
        for (const r of items) ctx.out.write(`${JSON.stringify({ v: 1, ...r })}\n`);
        return;
      }
      ctx.out.write(`${'ID'.padEnd(16)}  ${'STATE'.padEnd(11)}  ${'DONE'.padStart(6)}  ${'DOWN/s'.padStart(9)}  ${'UP/s'.padStart(9)}  NAME\n`);
      for (const r of items) {
        const pct = `${(r.progress * 100).toFixed(1)}%`;
        ctx.out.write(`${r.id}  ${r.state.padEnd(11)}  ${pct.padStart(6)}  ${bytes(r.downRate).padStart(9)}  ${bytes(r.upRate).padStart(9)}  ${r.name ?? r.file}${r.error === undefined ? '' : `  (${r.error})`}\n`);
      }
      ctx.out.write(`${items.length} kascades\n`);
    });

  for (const [name, what, status] of [
    ['pause', 'stop fetching, serving and announcing a kascade (kept across restarts)', 'paused'],
    ['resume', 'resume a paused kascade', 'resumed'],
    ['verify', 're-hash a seeding kascade\'s data file now (a failed or stalled one: try again now)', 'verifying'],
  ] as const) {
    box
      .command(name)
      .description(what)
      .argument('<kascade>', 'id, file name in the watch folder, data file name, or 8+ hex digits of the filehash')
      .option('--json', 'print the API reply as JSON', false)
      .action(async (query: string, flags: { json: boolean }) => {
        const c = client();
        const r = await resolve(c, query);
        const reply = await c.call<{ kascade: KascadeRecord }>('POST', `/kascades/${r.id}/${name}`);
        print(flags.json, reply, `${status} ${r.id} (${r.name ?? r.file}): now ${reply.kascade.state}`);
      });
  }

  box
    .command('rm')
    .description('remove a kascade from the box (its file leaves the watch folder); the data file stays unless --delete-data')
    .argument('<kascade>', 'id, file name in the watch folder, data file name, or 8+ hex digits of the filehash')
    .option('--delete-data', 'also delete its data file and its state', false)
    .option('--json', 'print the API reply as JSON', false)
    .action(async (query: string, flags: { deleteData: boolean; json: boolean }) => {
      const c = client();
      const r = await resolve(c, query);
      const reply = await c.call<{ id: string; deletedData: boolean }>('DELETE', `/kascades/${r.id}?deleteData=${flags.deleteData}`);
      print(flags.json, reply, `removed ${r.id} (${r.name ?? r.file})${reply.deletedData ? ' and deleted its data' : ''}`);
    });

  box
    .command('ui')
    .description('print the address of the box\'s web page, with the API token in its fragment')
    .action(() => {
      ctx.out.write(`${client().uiUrl()}\n`);
    });
}

async function listAll(c: BoxClient, state: string | undefined): Promise<KascadeRecord[]> {
  const out: KascadeRecord[] = [];
  let cursor: string | null = null;
  // Bounded: at most 1,000 pages of 1,000 (the watch folder holds at most 100,000 files).
  for (let i = 0; i < 1000; i++) {
    const q = new URLSearchParams({ limit: '1000', ...(state === undefined ? {} : { state }), ...(cursor === null ? {} : { cursor }) });
    const page: Page = await c.call<Page>('GET', `/kascades?${q}`);
    out.push(...page.items);
    cursor = page.next;
    if (cursor === null) break;
  }
  return out;
}

/** The one kascade `query` names. */
async function resolve(c: BoxClient, query: string): Promise<KascadeRecord> {
  const all = await listAll(c, undefined);
  const q = query.toLowerCase();
  const exact = all.filter((r) => r.id === q || r.file === query || r.name === query);
  const found = exact.length > 0 ? exact : /^[0-9a-f]{8,64}$/.test(q) ? all.filter((r) => r.filehash?.startsWith(q) === true || r.id.startsWith(q)) : [];
  if (found.length === 1) return found[0]!;
  if (found.length === 0) throw new KfetchError('KF_E_API_NOT_FOUND', `no kascade in the box matches "${query}" (see kfetch box ls)`, { field: 'kascade' });
  throw new KfetchError('KF_E_USAGE', `"${query}" matches ${found.length} kascades (${found.slice(0, 5).map((r) => r.id).join(', ')}…); give its id`, { field: 'kascade' });
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

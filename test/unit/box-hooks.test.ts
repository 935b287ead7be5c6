// Issue 12, hooks (src/box/hooks.ts) with real child processes: the command is checked at start (KF_E_USAGE naming
// the flag); facts reach the hook verbatim in its environment and nothing in them is ever run (a hostile kascade
// name with $(…), quotes, backticks, a newline and NUL); at most maxConcurrent at once with a bounded FIFO dropping
// the oldest; a hook over its time limit is killed with what it started; output is logged capped, with its exit
// code; close() waits up to its deadline, then kills.

import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { entryId } from '../../src/box/entry-id.js';
import { HookRunner, checkHookCommand, hookEnv, type HookFacts } from '../../src/box/hooks.js';
import { testScope } from '../helpers/test-scope.js';
import { pidAlive } from '../helpers/system.js';
import { never, until, within } from '../helpers/wait.js';
import { readEnv } from '../helpers/env-file.js';

const scope = testScope();
const runners: HookRunner[] = [];
afterEach(async () => {
  for (const r of runners.splice(0)) await r.close(0);
});

/** A logger whose JSON lines land in `lines`. */
function capture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

function script(dir: string, name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

function runner(o: ConstructorParameters<typeof HookRunner>[0]): HookRunner {
  const r = new HookRunner(o);
  runners.push(r);
  return r;
}

const facts = (id: string, extra: Partial<HookFacts> = {}): HookFacts => ({ id, file: `/w/${id}.kascade`, state: 'seeding', ...extra });

describe('checkHookCommand', () => {
  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['kfetch-no-such-program-xyz --x', 'not found on PATH'],
    ['bin/sh -c x', 'relative path'],
    ['./hook.sh', 'relative path'],
    ['/etc/passwd', 'not an executable file'],
    ['/tmp', 'not an executable file'],
    ['/bin/echo "unclosed', 'unclosed quote'],
    ['/bin/echo a\0b', 'NUL'],
    [`/bin/echo ${'x'.repeat(9000)}`, 'longer than'],
  ])('%j -> KF_E_USAGE (%s), naming the flag', (cmd, why) => {
    expect(() => checkHookCommand('--on-done', cmd)).toThrow(expect.objectContaining({ code: 'KF_E_USAGE', field: '--on-done' }));
    expect(() => checkHookCommand('--on-done', cmd)).toThrow(new RegExp(why));
  });

  it('splits words like a shell without expanding anything, and resolves the program on PATH', () => {
    expect(checkHookCommand('--on-done', `/bin/echo "a b" 'c $HOME' $(x) *.y`)).toEqual(['/bin/echo', 'a b', 'c $HOME', '$(x)', '*.y']);
    const env = checkHookCommand('--on-error', 'env -0');
    expect(env[0]).toMatch(/^\/.*\/env$/);
    expect(env.slice(1)).toEqual(['-0']);
  });

  it('HookRunner checks both commands at construction', () => {
    const { log } = capture();
    expect(() => new HookRunner({ onDone: '/bin/true', onError: 'kfetch-no-such-program-xyz', log })).toThrow(
      expect.objectContaining({ code: 'KF_E_USAGE', field: '--on-error' }),
    );
  });
});

describe('entryId', () => {
  it('is 16 hex of the sha256 of the basename, the same from a path or a name', () => {
    expect(entryId('/some/watch/ubuntu.kascade')).toBe(entryId('ubuntu.kascade'));
    expect(entryId('ubuntu.kascade')).toMatch(/^[0-9a-f]{16}$/);
    // printf 'a.kascade' | sha256sum
    expect(entryId('a.kascade')).toBe('87daedf6a47d1fb1');
    expect(entryId('a.kascade')).not.toBe(entryId('b.kascade'));
  });
});

describe('HookRunner', () => {
  it('a hostile kascade name reaches the hook verbatim in its environment, and nothing in it is executed', async () => {
    const dir = scope.dir('kfetch-hooks-');
    mkdirSync(join(dir, 'victim'));
    const out = join(dir, 'env.out');
    const hook = script(dir, 'hook.sh', 'exec env -0 > "$1"');
    const name = `a$(touch ${dir}/pwned1)";rm -rf ${dir}/victim;\`touch ${dir}/pwned2\`'\n$HOME *|touch ${dir}/pwned3 ~`;
    const error = `KF_E_IO: cannot write "${dir}/x" $(touch ${dir}/pwned4)`;
    const { log, lines } = capture();
    const r = runner({ onDone: `${hook} ${out}`, onError: `${hook} ${out}.err`, log });
    r.run('done', facts('0123456789abcdef', { name: `${name}\0tail`, filehash: 'ab'.repeat(32), size: 1234, data: `/d/${name}` }));
    await until(() => lines.some((l) => l.msg === 'hook ran'), 10_000, 'the done hook to run');
    const env = readEnv(out);
    expect(env.get('KFETCH_EVENT')).toBe('done');
    expect(env.get('KFETCH_ID')).toBe('0123456789abcdef');
    expect(env.get('KFETCH_FILE')).toBe('/w/0123456789abcdef.kascade');
    expect(env.get('KFETCH_NAME')).toBe(`${name}tail`); // verbatim, NUL removed (an environment value cannot hold one)
    expect(env.get('KFETCH_DATA')).toBe(`/d/${name}`);
    expect(env.get('KFETCH_FILEHASH')).toBe('ab'.repeat(32));
    expect(env.get('KFETCH_SIZE')).toBe('1234');
    expect(env.get('KFETCH_STATE')).toBe('seeding');
    expect(env.has('KFETCH_ERROR')).toBe(false);
    expect(env.get('PATH')).toBe(process.env.PATH); // the box's environment is passed on

    r.run('error', facts('fedcba9876543210', { state: 'failed', error }));
    await until(() => lines.filter((l) => l.msg === 'hook ran').length === 2, 10_000, 'the error hook to run');
    const envErr = readEnv(`${out}.err`);
    expect(envErr.get('KFETCH_EVENT')).toBe('error');
    expect(envErr.get('KFETCH_ERROR')).toBe(error);
    expect(envErr.get('KFETCH_STATE')).toBe('failed');
    for (const f of ['pwned1', 'pwned2', 'pwned3', 'pwned4']) expect(existsSync(join(dir, f)), f).toBe(false);
    expect(existsSync(join(dir, 'victim'))).toBe(true);
  });

  it('inherited KFETCH_* variables never reach a hook: only the facts given', () => {
    const env = hookEnv('done', facts('x'), { PATH: '/bin', KFETCH_ERROR: 'stale', KFETCH_NAME: 'stale', HOME: '/h' });
    expect(env).toEqual({ PATH: '/bin', HOME: '/h', KFETCH_EVENT: 'done', KFETCH_ID: 'x', KFETCH_FILE: '/w/x.kascade', KFETCH_STATE: 'seeding' });
  });

  it('runs at most maxConcurrent at once; the rest wait in order, the oldest dropped beyond maxWaiting', async () => {
    const dir = scope.dir('kfetch-hooks-');
    // Each run notes its start, then waits (bounded: 20 s, then the runner's time limit) for the release file.
    const hook = script(dir, 'hold.sh', `: > "$1/started.$KFETCH_ID"; i=0; while [ ! -e "$1/release" ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done`);
    const { log, lines } = capture();
    const r = runner({ onDone: `${hook} ${dir}`, log, maxConcurrent: 2, maxWaiting: 2, timeoutMs: 30_000 });
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) r.run('done', facts(id));
    const started = (): string[] => readdirSync(dir).filter((f) => f.startsWith('started.')).map((f) => f.slice(8)).sort();
    await until(() => started().length === 2, 10_000, 'two hooks to start');
    expect(started()).toEqual(['a', 'b']);
    expect(r.active).toBe(2);
    expect(r.queued).toBe(2); // c and d were dropped for e and f
    expect(r.dropped).toBe(2);
    expect(lines.filter((l) => l.msg === 'hook: too many waiting; the oldest is dropped').map((l) => l.id)).toEqual(['c', 'd']);
    await never(() => started().length > 2, 300, 'a third hook starting while two run');
    writeFileSync(join(dir, 'release'), '');
    await until(() => lines.filter((l) => l.msg === 'hook ran').length === 4, 20_000, 'the four kept runs');
    expect(started()).toEqual(['a', 'b', 'e', 'f']);
    expect(r.active).toBe(0);
  });

  it('a hook over its time limit is killed with the processes it started; output capped and exit code logged', async () => {
    const dir = scope.dir('kfetch-hooks-');
    const slow = script(dir, 'slow.sh', 'echo $$ > "$1/sh.pid"; sleep 30 & echo $! > "$1/sleep.pid"; wait');
    const loud = script(dir, 'loud.sh', 'i=0; while [ $i -lt 300 ]; do printf "0123456789"; i=$((i+1)); done; echo tail >&2; exit 3');
    const { log, lines } = capture();
    const r = runner({ onDone: `${slow} ${dir}`, onError: loud, log, timeoutMs: 300, outputBytes: 100 });
    r.run('done', facts('slow'));
    r.run('error', facts('loud', { error: 'x' }));
    await until(() => lines.some((l) => l.msg === 'hook: killed after its time limit'), 10_000, 'the slow hook to be killed');
    const killed = lines.find((l) => l.msg === 'hook: killed after its time limit')!;
    expect(killed).toMatchObject({ level: 40, hook: 'done', id: 'slow', timeoutMs: 300, signal: 'SIGKILL' });
    const sleepPid = Number(readFileSync(join(dir, 'sleep.pid'), 'utf8'));
    await until(() => !pidAlive(sleepPid), 5_000, 'the sleep the hook started to be gone too');
    await until(() => lines.some((l) => l.id === 'loud'), 10_000, 'the loud hook to end');
    const loudLine = lines.find((l) => l.id === 'loud')!;
    expect(loudLine).toMatchObject({ level: 40, exitCode: 3, msg: 'hook: exited with code 3' });
    expect(loudLine.output).toBe('0123456789'.repeat(10));
  });

  it('close() waits for running hooks up to its deadline, then kills them; nothing runs after', async () => {
    const dir = scope.dir('kfetch-hooks-');
    const quick = script(dir, 'quick.sh', 'sleep 0.2; : > "$1/quick.done"');
    const { log, lines } = capture();
    const r = runner({ onDone: `${quick} ${dir}`, onError: '/bin/sleep 30', log });
    r.run('done', facts('q'));
    await within(r.close(10_000), 10_000, 'close with a quick hook running');
    expect(existsSync(join(dir, 'quick.done'))).toBe(true); // waited for it

    const r2 = runner({ onError: '/bin/sleep 30', log });
    r2.run('error', facts('s', { error: 'x' }));
    await until(() => r2.active === 1, 5_000, 'the sleep hook to run');
    const t0 = performance.now();
    await within(r2.close(200), 10_000, 'close with a 30 s hook running');
    expect(performance.now() - t0).toBeLessThan(9_000);
    expect(lines.some((l) => l.msg === 'hook: still running at stop; killed')).toBe(true);
    r2.run('error', facts('after', { error: 'x' }));
    expect(r2.active).toBe(0);
  });
});

// Issue 12, hooks end to end: a real box child with `--on-done` / `--on-error` pointing at a script that writes its
// environment to a file. A kascade downloaded from a real peer fires --on-done with its facts; one whose data path
// is taken by a directory fails and fires --on-error with the error; hostile names (in the kascade file's name and
// in its data file name) reach the hook verbatim and nothing in them runs; a restart does not fire --on-done again
// for an entry already complete; the flags are refused without --watch or with a program that cannot run.

import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { entryId } from '../../src/box/entry-id.js';
import { startAdversarialPeer } from '../helpers/adversarial-peer.js';
import { BLOCK, boxPayload, boxStatus, boxWorld, entryOf, waitBoxStatus } from '../helpers/box-world.js';
import { runCli, startCli } from '../helpers/cli.js';
import { writeKascade } from '../helpers/make-file.js';
import { testScope } from '../helpers/test-scope.js';
import { never, until } from '../helpers/wait.js';
import { readEnv } from '../helpers/env-file.js';

const scope = testScope();

describe('issue 12: --on-done and --on-error', () => {
  it('fire with the facts in the environment, verbatim, nothing in them run; a restart does not fire --on-done again', async () => {
    const w = boxWorld(scope);
    const out = join(w.dir, 'hook-out');
    mkdirSync(out);
    mkdirSync(join(w.dir, 'victim'));
    const hook = join(w.dir, 'hook.sh');
    writeFileSync(hook, '#!/bin/sh\nexec env -0 > "$1/$KFETCH_EVENT.$KFETCH_ID.env"\n');
    chmodSync(hook, 0o755);

    // Kascade file names are anyone's (any bytes but / and NUL); data file names pass the parser's rules (no ").
    const goodFile = `a$(touch pwned1)";rm -rf victim;\`touch pwned2\`'.kascade`;
    const goodName = `g$(touch pwned3);rm -rf victim;'x' \`touch pwned4\` $HOME.bin`;
    const good = boxPayload(goodName, 'good');
    const peer = scope.keep(await startAdversarialPeer({ bytes: good.bytes, id: good.filehash, blockSize: BLOCK, bitfield: true }));
    writeKascade(join(w.watch, goodFile), { ...good.k, peers: [peer.addr] });
    // Its data path is a directory: the box cannot use it and the entry fails.
    const bad = boxPayload('taken.bin', 'bad');
    mkdirSync(join(w.data, 'taken.bin'));
    writeKascade(join(w.watch, 'bad.kascade'), bad.k);

    const args = ['seed', '--watch', w.watch, '--data', w.data, '--port', '0', '--on-done', `${hook} ${out}`, '--on-error', `${hook} ${out}`];
    const run = startCli(args, { home: w.home, cwd: w.dir });
    const url = (await run.waitForLine(/^listening on (http:\/\/\S+)/))[1]!;
    await waitBoxStatus(url, (s) => entryOf(s, goodFile)?.state === 'seeding', 'the good kascade seeding', 30_000);

    const doneFile = join(out, `done.${entryId(goodFile)}.env`);
    await until(() => existsSync(doneFile) && readFileSync(doneFile).length > 0, 15_000, 'the done hook to write its environment');
    await until(() => readFileSync(doneFile, 'utf8').includes('KFETCH_STATE='), 5_000, 'the whole environment');
    const done = readEnv(doneFile);
    expect(done.get('KFETCH_EVENT')).toBe('done');
    expect(done.get('KFETCH_ID')).toBe(entryId(goodFile));
    expect(done.get('KFETCH_FILE')).toBe(join(w.watch, goodFile));
    expect(done.get('KFETCH_NAME')).toBe(goodName);
    expect(done.get('KFETCH_FILEHASH')).toBe(good.filehash);
    expect(done.get('KFETCH_SIZE')).toBe(String(good.bytes.length));
    expect(done.get('KFETCH_DATA')).toBe(join(w.data, goodName));
    expect(done.get('KFETCH_STATE')).toBe('seeding');
    expect(done.has('KFETCH_ERROR')).toBe(false);

    const errorFile = join(out, `error.${entryId('bad.kascade')}.env`);
    await until(() => existsSync(errorFile) && readFileSync(errorFile, 'utf8').includes('KFETCH_STATE='), 20_000, 'the error hook');
    const error = readEnv(errorFile);
    expect(error.get('KFETCH_EVENT')).toBe('error');
    expect(error.get('KFETCH_FILE')).toBe(join(w.watch, 'bad.kascade'));
    expect(error.get('KFETCH_NAME')).toBe('taken.bin');
    expect(error.get('KFETCH_STATE')).toBe('failed');
    expect(error.get('KFETCH_ERROR')).toMatch(/^KF_E_[A-Z_]+: /);
    expect(error.get('KFETCH_ERROR')).toBe(entryOf(await boxStatus(url), 'bad.kascade')?.error);

    for (const f of ['pwned1', 'pwned2', 'pwned3', 'pwned4']) expect(existsSync(join(w.dir, f)), f).toBe(false);
    expect(existsSync(join(w.dir, 'victim'))).toBe(true);
    expect(run.stderr()).toMatch(/hook ran/);
    run.child.kill('SIGTERM');
    expect(await run.exited(15_000)).toBe(0);

    // Restart: the entry is loaded complete from the state and seeds without a new --on-done.
    rmSync(doneFile);
    const again = startCli(args, { home: w.home, cwd: w.dir });
    const url2 = (await again.waitForLine(/^listening on (http:\/\/\S+)/))[1]!;
    await waitBoxStatus(url2, (s) => entryOf(s, goodFile)?.state === 'seeding', 'seeding again after the restart', 30_000);
    await never(() => existsSync(doneFile), 1_500, 'the done hook firing again on a restart');
    again.child.kill('SIGTERM');
    expect(await again.exited(15_000)).toBe(0);
  });

  it('are refused without --watch, and with a program that cannot run (KF_E_USAGE naming the flag, exit 2)', async () => {
    const w = boxWorld(scope);
    const k = join(w.dir, 'x.kascade');
    writeKascade(k, boxPayload('x.bin', 'x').k);
    const noWatch = await runCli(['seed', k, '--data', w.data, '--on-done', '/bin/true'], { home: w.home });
    expect(noWatch.code).toBe(2);
    expect(noWatch.stderr).toMatch(/--on-done: hooks need box mode \(--watch <dir>\) \[KF_E_USAGE\]/);
    const typo = await runCli(['seed', '--watch', w.watch, '--data', w.data, '--port', '0', '--on-error', 'kfetch-no-such-hook-xyz "$X"'], {
      home: w.home,
    });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/--on-error: "kfetch-no-such-hook-xyz" was not found on PATH.*\[KF_E_USAGE\]/);
    expect(typo.stdout).not.toMatch(/listening on/);
  });
});

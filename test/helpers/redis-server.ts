// A real redis-server for a test (issue 13): started on a free loopback port with its own temp dir and no
// persistence, stopped (SIGTERM, bounded wait, then SIGKILL) and its dir removed after. Tests skip only when the
// binary is absent outside CI; in CI its absence fails the test.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './system.js';

export const REDIS_SERVER_BIN = process.env.KFETCH_REDIS_SERVER ?? '/usr/bin/redis-server';

/** Why Redis tests cannot run here (undefined: they can). In CI a missing binary is an error, never a skip. */
export function redisSkipReason(): string | undefined {
  if (existsSync(REDIS_SERVER_BIN)) return undefined;
  if (process.env.CI !== undefined) throw new Error(`${REDIS_SERVER_BIN} is missing: CI must install redis-server (.ci/run)`);
  return `${REDIS_SERVER_BIN} not installed: Redis store tests skipped (apt-get install redis-server)`;
}

export interface RedisServer {
  port: number;
  url: string;
  /** Stop the server (SIGTERM, then SIGKILL after 3 s); the data dir stays until close(). */
  stop(): Promise<void>;
  /** Start it again on the same port (after stop()), empty. */
  restart(): Promise<void>;
  /** SIGKILL, as a crash. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that hangs with its connections open. */
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

/** One PING over a raw socket: true on +PONG within 500 ms. */
async function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    const done = (ok: boolean): void => {
      sock.destroy();
      clearTimeout(timer);
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export async function startRedisServer(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-redis-'));
  let port = await freePort();
  let child: ChildProcess | undefined;
  let stderr = '';

  const launch = async (): Promise<void> => {
    const c = spawn(REDIS_SERVER_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    stderr = '';
    // redis-server logs to stdout: keep the start of both for the error message.
    const keep = (d: Buffer): void => {
      if (stderr.length < 4096) stderr += d.toString();
    };
    c.stdout?.on('data', keep);
    c.stderr?.on('data', keep);
    const deadline = Date.now() + 10_000;
    for (let i = 0; i < 200 && Date.now() < deadline; i++) {
      if (c.exitCode !== null) throw new Error(`redis-server exited (${c.exitCode}): ${stderr}`);
      if (await pings(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    c.kill('SIGKILL');
    throw new Error(`redis-server on port ${port} did not answer PING within 10 s: ${stderr}`);
  };

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGCONT');
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    const timer = new Promise<'late'>((r) => setTimeout(() => r('late'), 3_000).unref());
    if ((await Promise.race([exited, timer])) === 'late') {
      c.kill('SIGKILL');
      await exited;
    }
  };

  // The free port can be taken between our probe and redis-server's bind (tests run in parallel): try another.
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 3 || !/exited/.test(String(err))) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
      port = await freePort();
    }
  }
  return {
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}/0`;
    },
    stop: () => halt('SIGTERM'),
    freeze: () => void child?.kill('SIGSTOP'),
    thaw: () => void child?.kill('SIGCONT'),
    kill: () => halt('SIGKILL'),
    restart: async () => {
      await halt('SIGTERM');
      await launch();
    },
    close: async () => {
      await halt('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

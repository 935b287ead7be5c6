// N plain HTTP servers on 127.0.0.1 serving one file at /<filehash>: nginx (one master, N listening ports) when
// installed, else N processes of bench/static-server.js. Used by the `mirrors` scenario.

import { spawn, type ChildProcess } from 'node:child_process';
import { linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { processTree, trackChild } from '../measure.js';
import { STATIC_SERVER, freePort } from './common.js';
import { spawnListening } from './spawn-listening.js';

export interface HttpServers {
  kind: 'nginx' | 'node static server';
  ports: number[];
  /** The server processes now (nginx: its master and workers), for their CPU account. */
  pids(): number[];
  /** Serve another file at `/<id>` too; false where the servers serve only their one file (the Node fallback). */
  add(file: string, id: string): boolean;
  stop(): void;
}

async function waitForPort(port: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listening on 127.0.0.1:${port} after ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start `n` servers for `file` at `/<filehash>` under `dir`. */
export async function startHttpServers(dir: string, file: string, filehash: string, n: number, nginx: string | undefined): Promise<HttpServers> {
  if (nginx !== undefined) {
    const www = join(dir, 'www');
    mkdirSync(www, { recursive: true });
    linkSync(file, join(www, filehash));
    const ports: number[] = [];
    for (let i = 0; i < n; i++) ports.push(await freePort());
    const conf = join(dir, 'nginx.conf');
    const runAsRoot = process.getuid?.() === 0 ? 'user root;\n' : '';
    writeFileSync(
      conf,
      `${runAsRoot}daemon off;\nworker_processes 2;\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'nginx-error.log')} warn;\n` +
        `events { worker_connections 1024; }\n` +
        `http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 100000;\n  default_type application/octet-stream;\n` +
        `  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc; uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;\n` +
        ports.map((p) => `  server { listen 127.0.0.1:${p}; root ${www}; location / { } }\n`).join('') +
        `}\n`,
    );
    const proc = trackChild(spawn(nginx, ['-p', dir, '-c', conf, '-e', join(dir, 'nginx-error.log')], { stdio: ['ignore', 'ignore', 'pipe'] }), 'SIGTERM');
    let err = '';
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    try {
      for (const p of ports) await waitForPort(p, 10_000);
    } catch (e) {
      proc.kill('SIGTERM');
      let log = '';
      try {
        log = readFileSync(join(dir, 'nginx-error.log'), 'utf8');
      } catch {
        // no log
      }
      throw new Error(`nginx did not start: ${String(e)} ${err} ${log}`);
    }
    return {
      kind: 'nginx',
      ports,
      pids: () => (proc.pid === undefined ? [] : processTree(proc.pid)),
      add: (f, id) => {
        linkSync(f, join(www, id));
        return true;
      },
      stop: () => proc.kill('SIGTERM'),
    };
  }
  const procs: ChildProcess[] = [];
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = await spawnListening(process.execPath, [STATIC_SERVER, '--file', file, '--id', filehash, '--port', '0']);
    procs.push(c.proc);
    ports.push(Number(new URL(c.url).port));
  }
  return {
    kind: 'node static server',
    ports,
    pids: () => procs.flatMap((p) => (p.pid === undefined ? [] : [p.pid])),
    add: () => false,
    stop: () => procs.forEach((p) => p.kill('SIGTERM')),
  };
}

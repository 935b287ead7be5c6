// GET /status of the seeding box: what it is, where it watches, and every kascade's state, as JSON (also read by
// `kfetch status` while a box runs). Built on demand from the box's entries; nothing here is kept.

import type { Engine } from '../client/engine.js';
import { VERSION } from '../version.js';
import type { SeedBox } from './seed-box.js';

export interface BoxStatusFile {
  path: string;
  state: string;
  name?: string;
  swarmId?: string;
  filehash?: string;
  size?: number;
  data?: string;
  download?: number;
  bytesServed?: number;
  bytesFetched: number;
  error?: string;
  /** When a failed or stalled entry is tried again (ISO time). */
  nextTry?: string;
}

export interface BoxStatus {
  v: 1;
  version: string;
  pid: number;
  url: string;
  watch: string;
  data: string;
  startedAt: string;
  uptimeSeconds: number;
  kascades: Record<string, number>;
  openDataFiles: number;
  server: unknown;
  files: BoxStatusFile[];
}

export function boxStatus(box: SeedBox, engine: Engine, info: { pid: number; url: string; watch: string; data: string; startedAt: string }): BoxStatus {
  const stats = engine.server?.stats();
  const servedOf = (swarm: string): number => stats?.bytesSentBySwarm[swarm] ?? 0;
  const counts: Record<string, number> = { total: box.entries.size };
  const files: BoxStatusFile[] = [];
  for (const e of box.entries.values()) {
    counts[e.state] = (counts[e.state] ?? 0) + 1;
    const k = e.kascade;
    files.push({
      path: e.path,
      state: e.state,
      ...(k === undefined
        ? {}
        : { name: k.filename, swarmId: k.swarmId, filehash: k.filehash, size: k.filesize, bytesServed: servedOf(k.swarmId) }),
      ...(e.dataPath === undefined ? {} : { data: e.dataPath }),
      ...(e.rowId === undefined ? {} : { download: e.rowId }),
      bytesFetched: e.bytesFetched,
      ...(e.error === undefined ? {} : { error: e.error }),
      ...(e.nextTryAt === undefined ? {} : { nextTry: new Date(e.nextTryAt).toISOString() }),
    });
  }
  const { bytesSentBySwarm: _perFile, ...server } = stats ?? {};
  return {
    v: 1,
    version: VERSION,
    ...info,
    uptimeSeconds: Math.round((Date.now() - box.startedAt) / 1000),
    kascades: counts,
    openDataFiles: box.fds.stats().open,
    server,
    files,
  };
}

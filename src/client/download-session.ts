// One download: wires the block table, the availability map, the scheduler, peer stats and trust, the block
// client, the worker pool, the checkpointer, the tracker announcer, the served file and the final check together,
// and runs until the file is complete and its SHA-256 checked. The decisions live in the modules it wires; this
// file only moves events between them.

import type PQueue from 'p-queue';
import type { Logger } from 'pino';
import { KfetchError, fromFsError, isKfetchError } from '../errors.js';
import type { HashPool } from '../hashing/pool.js';
import type { Kascade } from '../kascade/kascade.js';
import type { BlockClient } from '../peer/block-client.js';
import { isLoopbackHost } from '../util/address-policy.js';
import { peerKey, type PeerInfo } from '../peer/peer-info.js';
import { countTransport, emptyTransportCounts } from '../peer/transport-counts.js';
import { VerifiedServedFile, type Library } from '../server/library.js';
import type { DataFile } from '../store/data-file.js';
import type { DownloadRow, StateDb } from '../store/state-db.js';
import { Announcer } from '../tracker/announcer.js';
import { Bitfield } from '../util/bitfield.js';
import { Availability } from './availability.js';
import type { BlockSlab, Slot } from './block-slab.js';
import { BlockTable, type BlockRequest } from './block-table.js';
import { Checkpointer, dataFileFacts } from './checkpointer.js';
import { CpuMeter } from './cpu-account.js';
import { crashPoint } from './crash-point.js';
import type { EventSink } from './events.js';
import type { EngineLimits } from './engine-limits.js';
import { finalCheck } from './final-check.js';
import { PeerStats } from './peer-stats.js';
import { PrefixHasher } from './prefix-hasher.js';
import { WriteBatcher, type RunOutcome } from './write-batcher.js';
import { Sha256Thread } from './sha256-thread.js';
import { schedule } from './scheduler.js';
import { banForBadBlock, judgeFailure } from './trust.js';

/** Consecutive worker failures that end a session (one is retried: piscina replaces a crashed thread). */
const MAX_WORKER_FAILURES = 3;

export interface SessionDeps {
  db: StateDb;
  workers: HashPool;
  client: BlockClient;
  /** The process-wide request queue: its concurrency is the global in-flight limit. */
  queue: PQueue;
  /** Block buffers, one per request in flight (slots at least this session's block size). */
  slab: BlockSlab;
  log: Logger;
  emit: EventSink;
  limits: EngineLimits;
  /** Where verified blocks are served from while downloading (undefined: not serving). */
  library?: Library;
  /** The port our block server listens on (announced to the tracker; also used to skip ourselves). */
  ourPort?: number;
  /** The port our binary peer wire listens on, if served (announced to the tracker as `wire`). */
  ourWirePort?: number;
  random?: () => number;
}

export interface SessionInit {
  row: DownloadRow;
  kascade: Kascade;
  dataFile: DataFile;
  /** Blocks trusted at start (checkpointed, re-verified where needed). */
  durable: Bitfield;
  /** Peers known before the tracker answers, with where each came from. */
  peers: readonly { addr: string; source: string }[];
  /** The mtime (whole seconds) workers keep on the data file, so outside changes show at resume. */
  mtimeSec: number;
}

/** One peer of a download, as the box's control API shows it. */
export interface SessionPeerView {
  address: string;
  source: string;
  downRate: number;
  downloadedBytes: number;
  /** Of `downloadedBytes`, the bytes that came over the binary peer wire. */
  wireBytes: number;
  share: number | null;
  inFlight: number;
  latencyMs: number | null;
  badBlocks: number;
  banned: string | null;
}

export type SessionResult = { outcome: 'complete'; seconds: number } | { outcome: 'stopped' };

export class DownloadSession {
  private readonly d: SessionDeps;
  private readonly s: SessionInit;
  private readonly k: Kascade;
  private readonly blockSize: number;
  private readonly n: number;
  private readonly availability: Availability;
  private readonly peers = new Map<string, PeerStats>();
  /** Every block's phase and the requests out for it. */
  private readonly table: BlockTable;
  /** The requests that started (fetch, then verify and write) and have not settled: `drain` awaits them. */
  private readonly tasks = new Set<Promise<void>>();
  private readonly served: VerifiedServedFile;
  private readonly checkpointer: Checkpointer;
  /** The whole-file SHA-256 over the verified prefix, kept up to date while downloading (finalCheck uses it). */
  private readonly prefix: PrefixHasher;
  /** The thread that runs the prefix hash (its CPU goes into the done event's account). */
  private readonly sha: Sha256Thread;
  private readonly cpu = new CpuMeter();
  private announcer: Announcer | undefined;
  private received = 0;
  /** `received` by the way it came: peer wire or HTTP (the done event's `transport`). */
  private readonly transport = emptyTransportCounts();
  private lastProgressAt = performance.now();
  private fatal: KfetchError | undefined;
  private wake: (() => void) | undefined;
  private stopping = false;
  private workerFailures = 0;
  private lastWorkerError: unknown;
  /** Runs of fetched blocks on their way to the workers, batched into few tasks. */
  private readonly writes: WriteBatcher;
  private ticks = 0;
  private readonly random: () => number;

  constructor(deps: SessionDeps, init: SessionInit) {
    this.d = deps;
    this.s = init;
    this.k = init.kascade;
    this.blockSize = init.row.blockSize;
    this.n = init.row.blockCount;
    this.random = deps.random ?? Math.random;
    this.table = new BlockTable(init.durable);
    this.availability = new Availability(this.n, (i, count) => this.table.waiting.update(i, count));
    this.served = new VerifiedServedFile(this.k, init.dataFile, init.durable, this.blockSize);
    this.checkpointer = new Checkpointer({
      db: deps.db,
      downloadId: init.row.id,
      dataFile: init.dataFile,
      durable: init.durable,
      mtimeMs: init.mtimeSec * 1000,
      everyBlocks: deps.limits.checkpointBlocks,
      everyMs: deps.limits.checkpointMs,
      bytesFetched: () => init.row.bytesFetched + this.received,
      onCheckpoint: (blocks) => {
        for (const b of blocks) this.served.markHeld(b.idx);
        this.emitProgress();
      },
      onError: (err) => this.fail(err),
      timeCommit: (commit) => this.cpu.commit(commit),
    });
    this.writes = new WriteBatcher({
      pool: deps.workers,
      fd: init.dataFile.fd,
      mtimeSec: init.mtimeSec,
      maxTasks: deps.workers.threads,
      maxTaskBytes: deps.slab.slotBytes * deps.slab.slots,
      onTask: (r) => this.cpu.task(r.cpuNs, r.thread),
    });
    this.sha = new Sha256Thread(init.dataFile.fd);
    this.prefix = new PrefixHasher({
      size: init.row.filesize,
      blockSize: this.blockSize,
      isVerified: (i) => this.table.isWritten(i),
      backend: this.sha,
    });
  }

  get id(): number {
    return this.s.row.id;
  }

  /** This download's peers as the box's control API shows them (`GET /api/v1/kascades/{id}/peers`). */
  peerViews(): SessionPeerView[] {
    return [...this.peers.values()].map((p) => {
      const held = this.availability.held(p.addr);
      const rate = p.throughputBytesPerMs ?? p.bytesPerMs;
      return {
        address: p.addr,
        source: p.source,
        downRate: rate === undefined ? 0 : Math.round(rate * 1000),
        downloadedBytes: p.bytesReceived,
        wireBytes: p.wireBytes,
        share: held === undefined || this.n === 0 ? null : held.count / this.n,
        inFlight: p.inFlight,
        latencyMs: p.latencyMs === undefined ? null : Math.round(p.latencyMs * 10) / 10,
        badBlocks: p.badBlocks,
        banned: p.banned ?? null,
      };
    });
  }

  /** Whether blocks that arrived are still being verified and written (they will count as progress, or fail, soon). */
  get verifying(): boolean {
    return this.table.writingCount > 0;
  }

  /** The block map as runs (BlockTable.runs). */
  blockRuns(): [string, number][] {
    return this.table.runs();
  }

  /** The session's announcer's facts (the box's API), undefined without one. */
  get announceFacts(): Announcer['facts'] | undefined {
    return this.announcer?.facts;
  }

  /** Announce now (the box's `reannounce`); a no-op without a tracker. */
  reannounce(): void {
    void this.announcer?.announceNow().catch(() => undefined);
  }

  /** Download until complete (resolves `complete`), stopped by `signal` (resolves `stopped`), or failed (throws). */
  async run(signal: AbortSignal): Promise<SessionResult> {
    const t0 = performance.now();
    const { row, dataFile } = this.s;
    this.d.emit({
      event: 'start', id: row.id, name: row.filename, filehash: row.filehash, size: row.filesize, blocks: this.n,
      blockSize: this.blockSize, have: this.s.durable.count, path: dataFile.path,
    });
    this.d.library?.add(this.served);
    this.checkpointer.start();
    this.prefix.advance(); // blocks trusted at start: their prefix is hashed in the background
    for (const p of this.s.peers) this.addPeer(p.addr, p.source, undefined, signal);
    this.remember(this.s.peers);
    this.startAnnouncer();
    const onAbort = (): void => this.wake?.();
    signal.addEventListener('abort', onAbort);
    // Ref'd on purpose: while the session runs, this timer keeps the process alive even when every peer is
    // backing off and nothing else is pending (cleared in `finally`).
    const ticker = setInterval(() => this.tick(), 500);
    try {
      let hashSeconds = 0;
      for (let round = 0; ; round++) {
        while (!signal.aborted && this.fatal === undefined && !this.table.complete) {
          this.schedule(signal);
          await new Promise<void>((res) => (this.wake = res));
          this.wake = undefined;
        }
        this.stopping = true;
        this.abortAll();
        if (this.fatal !== undefined) throw this.fatal;
        // Let in-flight writes finish (their results are discarded if not checkpointed), then checkpoint.
        await this.drain();
        await this.checkpointer.flush();
        if (signal.aborted || !this.table.complete) {
          await this.checkpointer.stop();
          this.d.db.setStatus(row.id, 'stopped');
          return { outcome: 'stopped' };
        }
        const h0 = performance.now();
        const ok = await this.finalCheck(round, signal);
        hashSeconds += (performance.now() - h0) / 1000;
        if (ok) break;
        this.stopping = false; // blocks that failed re-verification are missing again: fetch them
      }
      await this.checkpointer.stop();
      const seconds = (performance.now() - t0) / 1000;
      this.d.db.setStatus(row.id, 'complete');
      if (this.transport.wireBytes > 0) this.d.log.info({ id: row.id, received: this.received, overWire: this.transport.wireBytes }, 'bytes received over the peer wire');
      this.d.emit({
        event: 'done', id: row.id, name: row.filename, path: dataFile.path, size: row.filesize, filehash: row.filehash,
        seconds, hashSeconds, bytesPerSecond: this.received / Math.max(seconds, 1e-3), cpu: this.cpu.report(this.sha.cpuSeconds),
        transport: { ...this.transport },
      });
      return { outcome: 'complete', seconds };
    } catch (err) {
      this.stopping = true;
      this.abortAll();
      await this.drain();
      if (signal.aborted && this.fatal === undefined) {
        // Interrupted (for instance during the final hash): what was written is checkpointed, nothing failed.
        await this.checkpointer.stop().catch(() => undefined);
        this.d.db.setStatus(row.id, 'stopped');
        return { outcome: 'stopped' };
      }
      const e = isKfetchError(err) ? err : fromFsError(err, dataFile.path, 'download failed');
      // Keep what is safe: a final checkpoint of what was written, unless the store itself is what failed.
      if (e.code !== 'KF_E_STATE_CORRUPT') await this.checkpointer.stop().catch(() => undefined);
      try {
        this.d.db.setStatus(row.id, e.code === 'KF_E_DISK_FULL' ? 'stopped' : 'failed', `${e.code}: ${e.message}`);
      } catch {
        // the store failing too changes nothing about the error we report
      }
      throw e;
    } finally {
      clearInterval(ticker);
      signal.removeEventListener('abort', onAbort);
      await this.prefix.stop(); // no read of the data file outlives the session
      await this.announcer?.stop();
    }
  }

  private startAnnouncer(): void {
    if (this.d.ourPort === undefined && this.k.tracker === '') return;
    this.announcer = new Announcer({
      url: this.k.tracker,
      trackers: this.k.trackers,
      log: this.d.log,
      state: () => ({
        port: this.d.ourPort ?? 0,
        progress: this.n === 0 ? 1 : this.s.durable.count / this.n,
        blocks: { blockSize: this.blockSize, bitfield: this.s.durable },
        ...(this.d.ourWirePort === undefined ? {} : { wirePort: this.d.ourWirePort }),
      }),
      onPeers: (r) => {
        const fresh = r.peers.map((p) => peerKey(p.ip, p.port)).filter((a) => !this.peers.has(a));
        for (const p of r.peers) this.addTrackerPeer(p);
        // Tracker peers are remembered too: a resume after the tracker is gone still knows them.
        this.remember(fresh.map((addr) => ({ addr, source: 'tracker' })));
        this.wake?.();
      },
      onError: (err) => this.d.emit({ event: 'warning', id: this.id, code: err.code, message: err.message }),
    });
    this.announcer.start();
  }

  private remember(peers: readonly { addr: string; source: string }[]): void {
    try {
      this.d.db.rememberPeers(this.id, peers);
    } catch (err) {
      this.fail(err);
    }
  }

  private addTrackerPeer(p: PeerInfo): void {
    const addr = peerKey(p.ip, p.port);
    if (this.d.ourPort !== undefined && p.port === this.d.ourPort && isLoopbackHost(p.ip)) return; // ourselves
    // The tracker's word on its peer wire (issue 14): the first request to it can go there (block-client.ts).
    if (p.wire !== undefined) this.d.client.trackerWire(addr, p.wire);
    let held: Bitfield | undefined;
    if (p.blocks !== undefined && p.blocksize === this.blockSize) held = Bitfield.fromHex(p.blocks, this.n);
    else if (p.progress >= 1) held = Bitfield.full(this.n);
    const known = this.peers.get(addr);
    if (known !== undefined) {
      if (held !== undefined && known.banned === undefined) {
        this.availability.setPeer(addr, held);
        known.assumedHeld = false; // claimed now (its bitfield, or complete), by the tracker
        known.trackerClaimed = true;
      }
      return;
    }
    // A tracker peer short of complete that does not offer /blocks (an original 2015 peer, which serves only a
    // complete file) holds nothing we can ask for until the tracker says it is complete.
    this.addPeer(addr, 'tracker', held, undefined, () => new Bitfield(this.n));
  }

  /**
   * Learn of a peer; without a bitfield, ask its /blocks, and treat one that does not offer it as `unknown()` gives
   * (default complete: a plain HTTP server or a peer named by the user; the first request tells).
   */
  private addPeer(addr: string, source: string, held: Bitfield | undefined, signal: AbortSignal | undefined, unknown = (): Bitfield => Bitfield.full(this.n)): void {
    if (this.peers.has(addr) || this.peers.size >= this.d.limits.peersKnownMax) return;
    const stats = new PeerStats(addr, this.d.limits.peer);
    stats.source = source;
    this.peers.set(addr, stats);
    this.d.emit({ event: 'peer', id: this.id, peer: addr, action: 'added', source });
    if (held !== undefined) {
      this.availability.setPeer(addr, held);
      return;
    }
    const ask = AbortSignal.any([AbortSignal.timeout(this.d.limits.peer.minDeadlineMs), ...(signal ? [signal] : [])]);
    const assume = (): Bitfield => {
      const bf = unknown();
      stats.assumedHeld = bf.count > 0;
      return bf;
    };
    this.d.client
      .fetchBitfield(addr, this.k.swarmId, this.blockSize, this.n, ask)
      .catch(() => undefined) // unreachable now: as if it did not offer /blocks; the first request tells
      .then((bf) => {
        if (stats.banned === undefined) {
          if (bf !== undefined) this.availability.setPeer(addr, bf);
          // What the tracker said it holds meanwhile stands over an assumption.
          else if (!stats.trackerClaimed) this.availability.setPeer(addr, assume());
        }
        this.wake?.();
      })
      .catch((err: unknown) => this.fail(err));
  }

  /** Hand out every request there is room for (scheduler.ts decides, `request` sends). */
  private schedule(signal: AbortSignal): void {
    if (this.stopping || signal.aborted) return;
    const q = this.d.queue;
    const slab = this.d.slab;
    schedule(
      {
        peers: this.peers.values(),
        table: this.table,
        availability: this.availability,
        blockSize: this.blockSize,
        slotBytes: slab.slotBytes,
        requestMs: this.d.limits.requestMs,
        bufferBytesTotal: slab.slotBytes * slab.slots,
        now: performance.now(),
        room: () => q.size === 0 && q.pending < q.concurrency && slab.canAcquire(this.blockSize),
        canBuffer: (bytes) => slab.canAcquire(bytes),
        picker: { endgameBlocks: this.d.limits.endgameBlocks, endgameCopies: this.d.limits.endgameCopies, random: this.random, lowFirst: true },
        countsAsCopy: this.countsAsCopy,
      },
      this.issue,
    );
  }

  private readonly countsAsCopy = (p: string): boolean => (this.peers.get(p)?.blocksOk ?? 0) > 0;
  private readonly issue = (run: number[], peer: PeerStats, bufferBytes: number, swarmBytesPerMs: number | undefined): void =>
    this.request(run, peer, bufferBytes, swarmBytesPerMs);

  /** Ask `peer` for `run` into `bufferBytes` of the slab; `swarmBytesPerMs` (the best rate seen) sets the deadline of an unmeasured peer. */
  private request(run: number[], peer: PeerStats, bufferBytes: number, swarmBytesPerMs: number | undefined): void {
    const g = this.k.geometry(this.blockSize);
    const first = g.range(run[0]!).first;
    const last = g.range(run[run.length - 1]!).last;
    const len = last - first + 1;
    // One controller per request: its deadline, a session stop (abortAll) and another copy arriving abort it.
    const req: BlockRequest = { peer: peer.addr, ctrl: new AbortController(), run };
    const { signal } = req.ctrl;
    this.table.requested(req);
    peer.inFlight++;
    peer.inFlightBytes += bufferBytes;
    const slot = this.d.slab.acquire(bufferBytes)!;
    const deadline = Math.ceil(peer.deadlineMs(len, swarmBytesPerMs));
    const work = async (): Promise<void> => {
      if (signal.aborted) return; // stopped or beaten by another copy while queued: nothing to fetch
      const timer = setTimeout(() => req.ctrl.abort(new DOMException('deadline', 'TimeoutError')), deadline);
      const t = performance.now();
      try {
        // The run as blocks too, so a peer that advertised the peer wire is asked there (block-client.ts); the
        // bytes are verified below the same way whichever way they came.
        const via = await this.d.client.fetchRange(peer.addr, this.k.swarmId, first, last, slot.view, signal, {
          fileId: this.k.filehash,
          blockSize: this.blockSize,
          firstBlock: run[0]!,
          count: run.length,
        });
        countTransport(this.transport, via, len);
        if (via === 'wire') peer.wireBytes += len;
      } finally {
        clearTimeout(timer);
      }
      this.received += len;
      this.lastProgressAt = performance.now();
      const done = performance.now();
      peer.success(len, done - t, done);
      await this.store(req, slot, peer);
    };
    this.d.queue
      .add(() => this.running(work()))
      .catch((err: unknown) => this.requestFailed(req, peer, err))
      .finally(() => {
        this.table.settled(req, this.holders);
        peer.inFlight--;
        peer.inFlightBytes -= bufferBytes;
        this.d.slab.release(slot);
        this.wake?.();
      });
  }

  /** Track a request that started (its slot and maybe a worker write are in use) until it settles; `drain` awaits these. */
  private running(work: Promise<void>): Promise<void> {
    const tracked = work.finally(() => this.tasks.delete(tracked));
    this.tasks.add(tracked);
    return tracked;
  }

  private readonly holders = (i: number): number => this.availability.count(i);

  /**
   * Verify and write fetched blocks in a worker: those of the slot nobody has written or is writing (block-table
   * claims them; the first verified copy wins), in groups of consecutive blocks, one worker task each.
   */
  private async store(req: BlockRequest, slot: Slot, peer: PeerStats): Promise<void> {
    if (this.stopping) return;
    const g = this.k.geometry(this.blockSize);
    const mine: { i: number; at: number }[] = [];
    let at = slot.byteOffset;
    for (const i of req.run) {
      if (this.table.claim(i, req)) mine.push({ i, at });
      at += g.size(i);
    }
    if (mine.length === 0) return;
    try {
      crashPoint('before-write');
      // Consecutive pieces of the slot go to the worker as separate tasks when a skipped block splits them.
      for (let a = 0; a < mine.length; ) {
        let b = a + 1;
        while (b < mine.length && mine[b]!.i === mine[b - 1]!.i + 1) b++;
        await this.verifyAndWrite(mine, a, b, slot, peer);
        a = b;
      }
    } finally {
      // Blocks claimed but not written (bad, a crashed worker, a write error) are needed again (no-op for the rest).
      for (const { i } of mine) this.table.writeDone(i, false);
    }
  }

  /** Verify and write `mine[a..b)` (consecutive blocks) from the slot, batched with other runs into worker tasks. */
  private async verifyAndWrite(mine: { i: number; at: number }[], a: number, b: number, slot: Slot, peer: PeerStats): Promise<void> {
    const g = this.k.geometry(this.blockSize);
    const grp = mine.slice(a, b);
    let r: RunOutcome;
    try {
      r = await this.writes.submit({
        shared: slot.shared,
        byteOffset: grp[0]!.at,
        blocks: grp.map(({ i }) => ({ offset: g.start(i), length: g.size(i), expectedMd5: this.k.blockHash(this.blockSize, i) })),
      });
      this.workerFailures = 0;
    } catch (err) {
      // A crashed worker (piscina replaces the thread): the blocks are simply not written and are fetched again.
      // Only repeated failures end the session (each failed task counts once, whatever runs it carried).
      if (isKfetchError(err) && err.code === 'KF_E_WORKER' && (err === this.lastWorkerError || ++this.workerFailures < MAX_WORKER_FAILURES)) {
        if (err !== this.lastWorkerError) this.d.emit({ event: 'warning', id: this.id, code: err.code, message: err.message, block: grp[0]!.i });
        this.lastWorkerError = err;
        return;
      }
      throw err;
    }
    let allWritten = true;
    r.blocks.forEach((o, k) => {
      const i = grp[k]!.i;
      if (o.status === 'written') {
        this.table.writeDone(i, true);
        this.checkpointer.written(i, peer.addr);
      } else {
        allWritten = false;
        if (o.status === 'bad') this.banForHash(peer, i, o.actualMd5);
      }
    });
    if (allWritten) {
      // At the edge of the hashed prefix, the SHA-256 takes these bytes from the slot (held until it has).
      const first = grp[0]!.i;
      const last = grp[grp.length - 1]!.i;
      await this.prefix.offer(g.start(first), slot.shared, grp[0]!.at, g.start(last) + g.size(last) - g.start(first));
    } else {
      this.prefix.advance();
    }
    if (r.io !== undefined) {
      throw fromFsError(Object.assign(new Error(r.io.message), { code: r.io.code }), this.s.dataFile.path, `writing block ${grp[0]!.i}`);
    }
  }

  private banForHash(peer: PeerStats, i: number, actual: string): void {
    peer.badBlocks++;
    const reason = `block ${i} failed its MD5 check`;
    const first = banForBadBlock(peer, reason, this.availability);
    try {
      this.d.db.recordBadBlock(this.id, { idx: i, peer: peer.addr, expected: this.k.blockHash(this.blockSize, i), actual });
      if (first) this.d.db.banPeer(this.id, peer.addr, reason);
    } catch (err) {
      this.fail(err);
    }
    if (!first) return; // more bad blocks that were already in flight: evidence recorded, one ban
    this.d.log.warn({ peer: peer.addr, block: i, code: 'KF_E_PEER_HASH_MISMATCH' }, `peer banned: ${reason}`);
    this.d.emit({ event: 'peer', id: this.id, peer: peer.addr, action: 'banned', reason, code: 'KF_E_PEER_HASH_MISMATCH' });
  }

  private requestFailed(req: BlockRequest, peer: PeerStats, err: unknown): void {
    const i = req.run[0]!;
    const reason: unknown = req.ctrl.signal.reason;
    const deadline = reason instanceof DOMException && reason.name === 'TimeoutError';
    const v = judgeFailure({
      err,
      peer,
      runLength: req.run.length,
      block: i,
      // We cancelled it (another copy won, or we are stopping): not the peer's fault. A missed deadline is.
      cancelled: this.stopping || (req.ctrl.signal.aborted && !deadline),
      availability: this.availability,
      now: performance.now(),
      random: this.random,
    });
    if (v.kind === 'ours') return;
    if (v.kind === 'fatal') {
      this.fail(err);
      return;
    }
    if (v.dropped !== undefined) this.d.emit({ event: 'peer', id: this.id, peer: peer.addr, action: 'dropped', reason: v.dropped, code: v.err.code });
    this.d.log.debug({ peer: peer.addr, block: i, code: v.err.code }, v.err.message);
    this.d.emit({ event: 'warning', id: this.id, code: v.err.code, message: v.err.message, peer: peer.addr, block: i });
  }

  private fail(err: unknown): void {
    if (this.fatal !== undefined) return;
    this.fatal = isKfetchError(err) ? err : fromFsError(err, this.s.dataFile.path, 'download failed');
    this.wake?.();
  }

  private abortAll(): void {
    this.table.abortAll(new Error('stopping'));
  }

  /**
   * Wait for every started request of this session to settle (call after abortAll): fetches end at once, a running
   * worker write finishes (piscina must not abort it; its result is not checkpointed if we stop). A request still
   * queued does nothing once it starts (its signal is aborted), so it is not waited for.
   */
  private async drain(): Promise<void> {
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  private tick(): void {
    this.emitProgress();
    if (++this.ticks % 10 === 0 && this.d.log.isLevelEnabled('debug')) {
      const m = process.memoryUsage();
      this.d.log.debug({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers }, 'memory');
    }
    const usable = [...this.peers.values()].some((p) => p.banned === undefined);
    const stalledMs = performance.now() - this.lastProgressAt;
    if (this.d.limits.stallTimeoutMs > 0 && stalledMs > this.d.limits.stallTimeoutMs) {
      this.fail(
        new KfetchError(
          'KF_E_NO_PEERS',
          usable
            ? `no block arrived for ${Math.round(stalledMs / 1000)} s; peers known but not serving (resume later with kfetch resume)`
            : `no usable peer for ${Math.round(stalledMs / 1000)} s (resume later with kfetch resume)`,
          { file: this.s.dataFile.path },
        ),
      );
    }
    this.wake?.(); // peers whose backoff ended can take requests again
  }

  private emitProgress(): void {
    const secs = Math.max(1e-3, (performance.now() - this.startedAt) / 1000);
    this.d.emit({
      event: 'progress', id: this.id, received: this.received, verified: this.bytesOf(this.table.writtenCount, this.table.isWritten(this.n - 1)),
      durable: this.bytesOf(this.s.durable.count, this.s.durable.has(this.n - 1)), size: this.s.row.filesize,
      peers: [...this.peers.values()].filter((p) => p.banned === undefined).length,
      bytesPerSecond: this.received / secs,
    });
  }

  private readonly startedAt = performance.now();

  /** Bytes of `count` blocks, `last` telling whether the (shorter) last block is one of them. */
  private bytesOf(count: number, last: boolean): number {
    if (this.n === 0) return 0;
    const lastShort = last ? this.blockSize - this.k.geometry(this.blockSize).lastSize : 0;
    return count * this.blockSize - lastShort;
  }

  /** The whole-file check (final-check.ts); false when blocks were found bad on disk and are fetched again. */
  private finalCheck(round: number, signal: AbortSignal): Promise<boolean> {
    return finalCheck(
      {
        id: this.id,
        kascade: this.k,
        blockSize: this.blockSize,
        path: this.s.dataFile.path,
        fd: this.s.dataFile.fd,
        db: this.d.db,
        workers: this.d.workers,
        prefix: this.prefix,
        emit: this.d.emit,
        markMissing: (i) => {
          this.table.markMissing(i, this.availability.count(i));
          this.s.durable.set(i, false);
          this.served.markMissing(i);
        },
        recordDurable: () =>
          this.d.db.checkpoint(this.id, {
            complete: this.s.durable, blocks: [], bytesFetched: this.s.row.bytesFetched + this.received,
            ...dataFileFacts(this.s.dataFile, this.s.mtimeSec * 1000),
          }),
      },
      round,
      signal,
    );
  }
}

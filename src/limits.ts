// Every bound kfetch keeps, in one place, each with the reason for its number (RELIABILITY.md "Default limits").
// Commands copy these into their options so each can be overridden from the CLI.

const KiB = 1024;
const MiB = 1024 * KiB;

export const LIMITS = {
  /** A .kascade is refused before parsing above this: hex hashes of a 4 GiB file at 1 KiB blocks fit well under it. */
  kascadeMaxBytes: 64 * MiB,
  /** Blocks per offered size: a 4 GiB file at 1 KiB blocks; bounds memory for hash arrays and bitfields. */
  maxBlocksPerSize: 2 ** 22,
  /** Smallest block size: original Kascade files use 1 KiB and 4 KiB blocks; smaller invites a block-count DoS. */
  minBlockSize: 512,
  /** Largest block size: one block is one buffer in memory. */
  maxBlockSize: 64 * MiB,
  /** Default block size for `kfetch create`. */
  defaultBlockSize: 256 * KiB,
  /** filename length in bytes (common file systems' NAME_MAX). */
  maxFilenameBytes: 255,
  /** Tracker URLs a .kascade may name in all (`tracker` plus the `trackers` extension): failover, not a crawl list. */
  kascadeTrackersMax: 16,
  /** Bytes of one URL in the `trackers` extension (with kascadeTrackersMax: at most 32 KiB of URLs per file). */
  trackerUrlMaxBytes: 2048,

  /** Tracker reply body cap (libtorrent tracker_maximum_response_length). */
  trackerReplyMaxBytes: 1 * MiB,
  /** A reply over that cap is read on to here as a stream of entries, its complete ones kept (issue 10 point 11). */
  trackerReplyReadMaxBytes: 8 * MiB,
  /** Tracker: no byte for this long aborts the announce (libtorrent default). */
  trackerIdleTimeoutMs: 10_000,
  /** Tracker: the whole announce must finish within this (libtorrent default). */
  trackerTotalTimeoutMs: 30_000,
  /** Announce interval bounds; replies outside are clamped (libtorrent min_announce_interval). */
  announceIntervalMinMs: 30_000,
  announceIntervalMaxMs: 3_600_000,
  /** Default announce interval when the tracker names none. */
  announceIntervalDefaultMs: 60_000,
  /** Peers taken from one reply / known per swarm (libtorrent max_peerlist_size). */
  peersPerReply: 200,
  peersKnownMax: 3000,
  /** 403 without Retry-After means wait this long (SPEC §2). */
  trackerDefaultBackoffMs: 60_000,
  /** Retry: for this long after the first announce failures retry fast (a tracker starting alongside us is found soon). */
  announceFastWindowMs: 180_000,
  /** Retry delays inside that window, seconds, the last repeating, with jitter (a few tries a minute, no storm). */
  announceFastRetrySchedule: [5, 10, 20, 30] as readonly number[],
  /** Retry after the window: this, doubling per consecutive failure (a dead tracker gets ever fewer tries)… */
  announceBackoffBaseMs: 60_000,
  /** …up to this (a recovered tracker hears from every swarm within the hour; Transmission waits up to 2 h). */
  announceBackoffMaxMs: 3_600_000,
  /** Retry delays are scaled by a random factor in [1 - this, 1 + this) so swarms that failed together part. */
  announceRetryJitter: 0.25,
  /** Swarms added at once start over min(n × this, max): 2,000 swarms take 40 s, not one instant. */
  announceSpreadPerKascadeMs: 20,
  announceSpreadMaxMs: 60_000,
  /** Shared announce queue: announces in flight to any one tracker (no burst of thousands of sockets to it)… */
  announceQueuePerTracker: 8,
  /** …and across every tracker (a hanging tracker holds at most its own share; the fd count stays small). */
  announceQueueConcurrency: 16,
  /** stopAll: event=stopped announces in flight at once, and one deadline for all (a shutdown must end). */
  announceStopAllConcurrency: 16,
  announceStopAllDeadlineMs: 4_000,
  /**
   * Failover: `event=stopped` goes to at most this many of the trackers that last accepted our announce (the current
   * one and the one before a switch), in parallel under one deadline: a shutdown costs sockets per kascade, not per URL.
   */
  announceStoppedTrackersMax: 2,

  /** Tracker server: request body cap; a form with a bitfield for 2^22 blocks is ~1 MiB of hex. */
  trackerRequestMaxBytes: 2 * MiB,
  /** Tracker server: at most this many peers in a reply (SPEC-compatible random subset). */
  trackerReplyPeers: 50,
  /**
   * Tracker server: bytes of one reply at most (bitfields left out first, then peers): half the clients'
   * trackerReplyMaxBytes, so the tracker never sends a reply its own clients refuse (issue 10, 11).
   */
  trackerReplyBudgetBytes: 512 * KiB,
  /** Tracker server: bitfield bytes kept per swarm / in all; past them a peer is listed without its bitfield (issue 10). */
  trackerMaxBitfieldBytesPerSwarm: 32 * MiB,
  trackerMaxBitfieldBytes: 256 * MiB,
  /** Tracker server: announce interval it advertises and minimum gap per address+port+swarm. */
  trackerIntervalMs: 60_000,
  trackerMinIntervalMs: 5_000,
  /** Tracker server: a peer not heard from for this many intervals is dropped. */
  trackerExpiryIntervals: 3,
  /** Tracker server: a peer that announced complete stays listed this long (original peers never re-announce, SPEC §6). */
  trackerCompleteExpiryMs: 6 * 3_600_000,
  /** Tracker server: longest --complete-expiry (a week; past that a "seeder" is most likely gone). */
  trackerCompleteExpiryMaxMs: 7 * 86_400_000,
  /** Tracker server: a progress this far outside [0, 1] is rounding noise and clamped; further out is refused. */
  trackerProgressSlack: 0.001,
  /** Tracker server: swarms and peers per swarm it keeps (memory bound against floods). */
  trackerMaxSwarms: 100_000,
  trackerMaxPeersPerSwarm: 10_000,
  /**
   * Tracker server: peers one source address may have in one swarm; a new one beyond evicts that address's stalest
   * (a lab behind one NAT, or a box running several kfetch, stays well under; one address cannot fill a swarm).
   */
  trackerMaxPeersPerAddress: 64,
  /** Tracker server: peers over all swarms (~250 B each, ~250 MiB; complete peers live for hours, so floods add up). */
  trackerMaxPeers: 1_000_000,

  /** Peer server: concurrent requests overall and per client IP (slowloris and fan-out). */
  serverMaxConcurrent: 256,
  serverMaxPerClient: 32,
  /** Peer server: headers must arrive within, the whole request within (Node http server knobs). */
  serverHeadersTimeoutMs: 10_000,
  serverRequestTimeoutMs: 30_000,
  /** Peer server: a response idle (no drain) this long is destroyed. */
  serverIdleTimeoutMs: 30_000,
  /** Peer server: the largest single range served (bounds memory per request). */
  serverMaxRangeBytes: 64 * MiB,
  /**
   * Peer server: read chunk for streaming a range from disk: a whole 1 MiB range (what kfetch asks) in one read,
   * one after-read check and one socket write. Per response one buffer; see serverReadBufferMaxBytes.
   */
  serverReadChunkBytes: 1 * MiB,
  /** Peer server: the chunk of responses beyond serverReadBufferMaxBytes of large buffers (many slow readers). */
  serverReadChunkSmallBytes: 64 * KiB,
  /** Peer server: large read buffers at most over all responses, bytes (server/buffer-pool.ts). */
  serverReadBufferMaxBytes: 32 * MiB,
  /** Peer server: small read buffers kept for reuse when no response holds them, bytes. */
  serverPoolFreeBytes: 4 * MiB,
  /**
   * Peer server: open connections at most (overall by default: the fd limit less serverFdReserve, within
   * [16, serverMaxConnections]) and per client address; beyond them idle ones are closed first, then new ones.
   */
  serverMaxConnections: 8_192,
  serverMaxConnectionsPerAddress: 128,
  /** Peer server: fds kept free of connections for data files (a box's 256), outgoing peer sockets, the state, workers. */
  serverFdReserve: 512,
  /** Peer server: connections beyond the caps for the owner's /status and /metrics only. */
  serverOwnerConnections: 4,

  /** Seeding box: a data file's fd unused this long is closed (a library of 2,000 files holds few fds). */
  boxFdIdleMs: 60_000,
  /** Seeding box: data files held open at most (below a default `ulimit -n` of 1024, leaving room for sockets). */
  boxMaxOpenFiles: 256,
  /** Seeding box: downloads running at once (each holds a data file, an announcer and peer connections). */
  boxMaxDownloads: 4,
  /** Seeding box: a download with no verified block this long gives its slot up (unservable ones cannot hold every slot). */
  boxStallTimeoutMs: 120_000,
  /** Seeding box: a kascade file modified this recently may still be being written; read it once it settles. */
  boxSettleMs: 1_000,
  /** Seeding box: the watch folder is rescanned this often even without fs.watch events (which can be missed). */
  boxRescanMs: 30_000,
  /** Seeding box: one complete file is re-verified this often (2,000 files: a full pass in about two weeks). */
  boxScrubMs: 600_000,
  /** Seeding box: a failed entry (download, verification) is retried after this, doubling per failure… */
  boxRetryBaseMs: 30_000,
  /** …up to this (a disk that stays full, a data file that stays unreadable, is not hammered). */
  boxRetryMaxMs: 3_600_000,
  /** Peer server: requests waiting for a slot overall / per client address; beyond them 503 (a queue is memory too). */
  serverMaxQueued: 1024,
  serverMaxQueuedPerClient: 64,
  /** Peer server: a request queued this long gets 503 (a downloader's block deadline is 5-60 s; let it go elsewhere). */
  serverQueueTimeoutMs: 10_000,
  /** Peer server: distinct client addresses in flight or queued; bounds per-client bookkeeping against address floods. */
  serverMaxClients: 1024,
  /** Peer server: upload rate limit in bytes/s shared by all clients; 0 is unlimited (the user's link is the limit). */
  serverMaxUploadBytesPerSec: 0,
  /** Peer server: the rate limiter's bucket holds this much time of the rate (a modest burst after an idle spell). */
  serverUploadBurstMs: 250,
  /** Peer server: under a rate limit a chunk is about this much time of the rate, so no chunk waits seconds for tokens. */
  serverUploadChunkMs: 50,
  /** Peer server: smallest streaming chunk under a very low rate limit (syscall and header overhead per chunk). */
  serverUploadMinChunkBytes: 1 * KiB,

  /** Peer wire (docs/spec-peer-wire.md): blocks per request at most (a run of 4 KiB blocks fills 4 MiB at 1,024). */
  wireMaxBlocksPerRequest: 1024,
  /** Peer wire: bytes one request may ask for unless it asks for one block (one pooled buffer's worth, a few). */
  wireMaxRequestBytes: 4 * MiB,
  /** Peer wire: requests a client may have outstanding on one connection; the seeder closes it beyond (bounds memory). */
  wireMaxPipelined: 64,
  /**
   * Peer wire: requests of one connection read ahead (a slot, a buffer, the first chunk) while an earlier reply is
   * written, so one connection keeps the disk and the socket busy at once (HTTP gets that from many connections).
   */
  wireReadAhead: 4,

  /** create/verify: bytes read per task handed to the worker pool. */
  hashChunkBytes: 8 * MiB,
  /** create/verify: bytes handed to hash workers at once (at least 1 chunk); bounds memory at 64 MiB block sizes. */
  hashInFlightBytes: 128 * MiB,
} as const;

export type Limits = typeof LIMITS;

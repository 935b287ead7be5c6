// The WebTorrent anchor's peer (issue 11): the `webtorrent` library that webtorrent-cli runs, from the anchors
// folder, as a TCP-only BitTorrent peer for loopback. webtorrent-cli cannot turn off DHT, local service discovery,
// UPnP / NAT-PMP or uTP, and those would send packets off this machine (multicast, the gateway, DHT bootstrap
// hosts); here every one is off and peers come only from the torrent's tracker on 127.0.0.1. WebRTC is never used
// (scripts/install-anchors.sh stubs node-datachannel's native binding).
// Usage: node dist/bench/webtorrent-peer.js <webtorrent package dir> seed|get <file.torrent> <dir> [port]
//   seed: serve the complete file in <dir> (verified at start), print `seeding` once ready, run until killed;
//   get:  download into <dir>, verifying every piece's SHA-1, and exit 0 when done (1 on an error).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The few parts of the webtorrent API used here. */
interface WtTorrent {
  done: boolean;
  on(event: 'done' | 'ready', f: () => void): void;
  on(event: 'error', f: (err: Error) => void): void;
}
interface WtClient {
  add(torrent: Buffer, opts: { path: string }, onTorrent?: (t: WtTorrent) => void): WtTorrent;
  on(event: 'error', f: (err: Error) => void): void;
  destroy(cb?: (err?: Error) => void): void;
}
type WtClientClass = new (opts: Record<string, unknown>) => WtClient;

async function main(argv: string[]): Promise<void> {
  const [pkg, mode, torrentPath, dir, port] = argv;
  if (pkg === undefined || (mode !== 'seed' && mode !== 'get') || torrentPath === undefined || dir === undefined) {
    throw new Error('usage: webtorrent-peer.js <webtorrent package dir> seed|get <file.torrent> <dir> [port]');
  }
  const WebTorrent = ((await import(pathToFileURL(join(pkg, 'index.js')).href)) as { default: WtClientClass }).default;
  const client = new WebTorrent({
    dht: false,
    lsd: false,
    utPex: false,
    natUpnp: false,
    natPmp: false,
    utp: false,
    webSeeds: false,
    ...(port === undefined ? {} : { torrentPort: Number(port) }),
  });
  const fail = (err: Error): void => {
    process.stderr.write(`webtorrent-peer: ${err.message}\n`);
    process.exit(1);
  };
  client.on('error', fail);
  const torrent = client.add(readFileSync(torrentPath), { path: dir });
  torrent.on('error', fail);
  if (mode === 'seed') {
    let said = false;
    const ready = (): void => {
      if (said || !torrent.done) return;
      said = true;
      process.stdout.write('seeding\n');
    };
    torrent.on('ready', ready);
    torrent.on('done', ready);
    return;
  }
  torrent.on('done', () => client.destroy(() => process.exit(0)));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`webtorrent-peer: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

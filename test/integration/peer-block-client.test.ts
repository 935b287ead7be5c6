// BlockClient's /blocks request (undici) against the original 2015 peer, which answers it with a 404 whose head
// never ends before the close (issue 9, point 6): the request must fail at the close, not hang to its deadline.

import { afterEach, describe, expect, it } from 'vitest';
import { KfetchError } from '../../src/errors.js';
import { BlockClient } from '../../src/peer/block-client.js';
import { payloadBytes } from '../helpers/make-file.js';
import { startOriginalServer, type OriginalServer } from '../helpers/original-server.js';

const servers: OriginalServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe('block client against the original 2015 peer', () => {
  it('a headerless 404 to /blocks settles at the close (no bitfield), well before the deadline', async () => {
    const bytes = payloadBytes(0, 10 * 1024, 'bitfield');
    const s = await startOriginalServer({ bytes, id: 'ab'.repeat(32), blockSize: 1024 });
    servers.push(s);
    const client = new BlockClient({ connectionsPerPeer: 4, connectTimeoutMs: 2_000 });
    const deadline = AbortSignal.timeout(5_000);
    try {
      const got = await client.fetchBitfield(s.addr, 'ab'.repeat(32), 1024, 10, deadline).then(
        (bf) => ({ bf }),
        (e: unknown) => ({ code: e instanceof KfetchError ? e.code : String(e) }),
      );
      // Either "does not offer it" or a connection error; both make the session assume the peer holds everything.
      expect(got).toSatisfy((g: { bf?: unknown; code?: string }) => ('bf' in g ? g.bf === undefined : g.code === 'KF_E_PEER_CONNECT'));
      expect(deadline.aborted).toBe(false);
      expect(s.log.map((r) => [r.path, r.status])).toEqual([[`/${'ab'.repeat(32)}/blocks?blocksize=1024`, 404]]);
    } finally {
      await client.close();
    }
  });
});

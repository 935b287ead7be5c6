// The seeding box's control API, wired: the token in the home, the event hub and its publisher, the settings
// control over the block server and the box, the page's files, and the handler (on the box's port, or a server of
// its own with --api-port). Used by box-run.ts.

import type { Logger } from 'pino';
import { createApiHandler, startApiServer, type ApiHandler } from '../api/api-server.js';
import type { ApiContext } from '../api/api-routes.js';
import { ensureApiToken } from '../api/api-token.js';
import { EntryRates } from '../api/entry-rates.js';
import { EventHub } from '../api/event-hub.js';
import { boxStats, EventPublisher } from '../api/event-publisher.js';
import { kascadeRecord } from '../api/kascade-record.js';
import type { BoxSettings } from '../api/settings.js';
import { createStaticFiles } from '../api/static-files.js';
import type { SeedBox } from '../box/seed-box.js';
import type { Engine } from '../client/engine.js';
import { accessList } from '../peer/access-list.js';
import type { BlockServer } from '../server/block-server.js';
import type { BoxFlags } from './box-run.js';

export interface BoxApi {
  handler: ApiHandler;
  /** Base URL of the API's port (the box's own unless --api-port). */
  url: string;
  close(): void;
}

export async function startBoxApi(o: { box: SeedBox; engine: Engine; server: BlockServer; home: string; log: Logger; flags: BoxFlags }): Promise<BoxApi> {
  const { box, engine, server, log, flags } = o;
  const token = ensureApiToken(o.home);
  const settings = {
    get: (): BoxSettings => {
      const l = server.limits();
      return { maxUpload: l.maxUploadBytesPerSec, maxPeers: l.maxClients, maxDownloads: box.maxDownloads };
    },
    set: (p: Partial<BoxSettings>): BoxSettings => {
      server.setLimits({
        ...(p.maxUpload === undefined ? {} : { maxUploadBytesPerSec: p.maxUpload }),
        ...(p.maxPeers === undefined ? {} : { maxClients: p.maxPeers }),
      });
      if (p.maxDownloads !== undefined) box.setMaxDownloads(p.maxDownloads);
      return settings.get();
    },
  };
  const served = (swarmId: string): number => server.bytesSentFor(swarmId);
  const rates = new EntryRates();
  // The hub's snapshot reads the context, so it is built first and the context filled in right after.
  const api = { box, engine, rates, served, settings, log } as Omit<ApiContext, 'hub' | 'stats' | 'uploads'> as ApiContext;
  const hub = new EventHub({
    log,
    snapshot: () => ({ v: 1, settings: settings.get(), stats: boxStats(api), kascades: [...box.entries.values()].map((e) => kascadeRecord(e, api)) }),
  });
  api.hub = hub;
  const publisher = new EventPublisher(api);
  api.stats = () => publisher.stats();
  api.uploads = (swarmId) => server.uploadsFor(swarmId);
  const handler = createApiHandler({
    api,
    token,
    allowed: accessList(flags.apiAllow ?? []),
    hostNames: new Set((flags.apiHost ?? []).map((h) => h.toLowerCase())),
    corsOrigin: flags.apiCors,
    ui: createStaticFiles(),
    log,
  });
  let own: Awaited<ReturnType<typeof startApiServer>> | undefined;
  // Its own port listens on loopback unless --api-allow opens the API to others (then where the box listens).
  const apiHost = (flags.apiAllow ?? []).length > 0 ? flags.host : '127.0.0.1';
  if (flags.apiPort !== undefined) own = await startApiServer(handler, apiHost, flags.apiPort);
  const url = own?.url ?? server.url;
  log.info({ api: `${url}/api/v1/`, ui: `${url}/ui/` }, 'box: control API and page');
  return {
    handler,
    url,
    close: () => {
      publisher.close();
      hub.close();
      void own?.close();
    },
  };
}

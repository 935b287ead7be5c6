// @ts-check
// The detail panel of one kascade: its record's facts (kept live from the event stream), its peers and its block
// map (fetched when opened and every few seconds while it stays open).

import { api } from './api-client.js';
import { drawBlockMap } from './canvas.js';
import { bytes, duration, percent, rate } from './format.js';

const REFRESH_MS = 3000;

/** @typedef {import('./reducer.js').KascadeRecord} KascadeRecord */

/**
 * @param {{ root: HTMLElement, onError: (e: unknown) => void, onClose: () => void }} p
 */
export function createDetailView({ root, onError, onClose }) {
  const q = (/** @type {string} */ id) => /** @type {HTMLElement} */ (root.querySelector(`[data-testid="${id}"]`));
  const facts = q('detail-facts');
  const title = q('detail-name');
  const map = /** @type {HTMLCanvasElement} */ (q('blockmap'));
  const peerBody = /** @type {HTMLElement} */ (q('peers').querySelector('tbody'));
  let id = '';
  /** @type {KascadeRecord | null} */
  let shown = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @type {AbortController | null} */
  let inflight = null;

  q('detail-close').addEventListener('click', () => {
    close();
    onClose();
  });

  async function refresh() {
    const want = id;
    inflight?.abort();
    const ac = new AbortController();
    inflight = ac;
    try {
      const enc = encodeURIComponent(want);
      const [peers, blocks] = await Promise.all([
        api('GET', `kascades/${enc}/peers`, { signal: ac.signal }),
        api('GET', `kascades/${enc}/blocks?format=runs`, { signal: ac.signal }),
      ]);
      if (want !== id) return;
      drawPeers(Array.isArray(peers?.peers) ? peers.peers : []);
      drawBlockMap(map, blocks?.runs, typeof blocks?.blocks === 'number' ? blocks.blocks : 0);
    } catch (e) {
      if (!ac.signal.aborted && want === id) onError(e);
    } finally {
      if (want === id) timer = setTimeout(() => void refresh(), REFRESH_MS);
    }
  }

  /** @param {any[]} peers */
  function drawPeers(peers) {
    const frag = document.createDocumentFragment();
    for (const p of peers.slice(0, 500)) {
      const tr = document.createElement('tr');
      tr.dataset.testid = 'peer';
      const share = typeof p.share === 'number' ? percent(p.share) : '–';
      const latency = typeof p.latencyMs === 'number' ? `${Math.round(p.latencyMs)} ms` : '–';
      for (const text of [p.address, p.source, rate(p.downRate), rate(p.upRate), share, latency, p.badBlocks, p.banned ?? '']) {
        const td = document.createElement('td');
        td.textContent = String(text ?? '');
        tr.append(td);
      }
      frag.append(tr);
    }
    peerBody.replaceChildren(frag);
  }

  function close() {
    id = '';
    shown = null;
    clearTimeout(timer);
    inflight?.abort();
    root.hidden = true;
  }

  return {
    /** @param {string} next @param {KascadeRecord | undefined} rec */
    open(next, rec) {
      close();
      id = next;
      root.hidden = false;
      peerBody.replaceChildren();
      if (rec) this.show(rec);
      void refresh();
    },
    close,
    get id() {
      return id;
    },
    /** Rewrites the facts when the record changed. @param {KascadeRecord} r */
    show(r) {
      if (r === shown) return;
      shown = r;
      title.textContent = typeof r.name === 'string' ? r.name : String(r.file ?? r.id);
      const t = /** @type {Record<string, unknown>} */ (typeof r.tracker === 'object' && r.tracker !== null ? r.tracker : {});
      const urls = Array.isArray(t.urls) ? t.urls.map(String) : [];
      /** @type {[string, unknown][]} */
      const rows = [
        ['State', r.state + (typeof r.error === 'string' ? ` — ${r.error}` : '')],
        ['Progress', `${percent(r.progress)} of ${bytes(r.size)}`],
        ['Received / verified / durable', `${bytes(r.receivedBytes)} / ${bytes(r.verifiedBytes)} / ${bytes(r.durableBytes)}`],
        ['Down / up', `${rate(r.downRate)} / ${rate(r.upRate)}`],
        ['ETA', duration(r.eta)],
        ['Fetched / served', `${bytes(r.fetchedBytes)} / ${bytes(r.servedBytes)}`],
        ['Peers, bad blocks, bans', `${r.peers ?? '–'}, ${r.badBlocks ?? '–'}, ${r.bans ?? '–'}`],
        ['Blocks', `${r.blocks ?? '–'} × ${bytes(r.blockSize)}`],
        ['Tracker', urls.length > 1 ? `${String(t.url)} (of ${urls.length} in failover order: ${urls.join(', ')})` : t.url],
        ['Last / next announce', `${t.lastAnnounce ?? '–'} / ${t.nextAnnounce ?? '–'}`],
        ['Tracker error', t.lastError ?? '–'],
        ['Last scrub', r.lastScrub ?? '–'],
        ['Next try', r.nextTry ?? '–'],
        ['File', r.file],
        ['Data', r.data],
        ['Filehash', r.filehash],
        ['Id', r.id],
      ];
      const frag = document.createDocumentFragment();
      for (const [k, v] of rows) {
        const dt = document.createElement('dt');
        dt.textContent = k;
        const dd = document.createElement('dd');
        dd.textContent = v === undefined || v === null ? '–' : String(v);
        frag.append(dt, dd);
      }
      facts.replaceChildren(frag);
    },
  };
}

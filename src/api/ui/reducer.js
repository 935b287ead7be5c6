// @ts-check
// The page's state, rebuilt from the box's event stream (docs/api.md "Event stream"): a `snapshot` replaces
// everything, `kascade.added|changed|removed` edit one record, `box.stats` updates the totals, the settings and
// the rate history the graph draws; the page's own `settings` event carries its GET/PATCH /settings answers.
// Pure: `reduce(state, event)` answers a new state and never changes its input; `reduceAll` applies a batch with
// one copy of the record map (a chunk of the stream may hold hundreds of events and the map 10,000 records).
// Malformed payloads are ignored, never thrown: the stream is input too.

/**
 * @typedef {Record<string, unknown> & { id: string, state: string }} KascadeRecord
 * @typedef {{ maxUpload: number, maxPeers: number, maxDownloads: number }} Settings
 * @typedef {{ down: number, up: number }} RatePoint
 * @typedef {object} UiState
 * @property {Map<string, KascadeRecord>} kascades  by id
 * @property {Settings | null} settings
 * @property {Record<string, unknown> | null} stats  the last box.stats payload
 * @property {RatePoint[]} rates  the last RATE_POINTS box.stats rates, oldest first
 * @property {number} version  grows on every change
 * @property {number} shape  grows when a record is added or removed, or its state or name changes (the
 *   table's filtered, sorted row list depends on nothing else)
 * @typedef {{ type: string, data: unknown }} UiEvent  an SSE event with its data parsed as JSON
 */

/** Points of rate history kept for the graph (one per box.stats, i.e. per second). */
export const RATE_POINTS = 120;

/** @returns {UiState} */
export function initialState() {
  return { kascades: new Map(), settings: null, stats: null, rates: [], version: 0, shape: 0 };
}

/**
 * @param {UiState} state
 * @param {UiEvent} event
 * @returns {UiState}
 */
export function reduce(state, event) {
  return reduceAll(state, [event]);
}

/**
 * Applies `events` in order; answers `state` itself when none of them changed anything.
 * @param {UiState} state
 * @param {readonly UiEvent[]} events
 * @returns {UiState}
 */
export function reduceAll(state, events) {
  /** @type {Map<string, KascadeRecord> | null} the copy, made on the first record edit */
  let map = null;
  let { settings, stats, rates, shape } = state;
  let changed = false;
  const records = () => (map ??= new Map(state.kascades));

  for (const ev of events) {
    const d = asObject(ev.data);
    if (d === null) continue;
    switch (ev.type) {
      case 'snapshot': {
        const list = Array.isArray(d.kascades) ? d.kascades : [];
        map = new Map();
        for (const r of list) if (isRecord(r)) map.set(r.id, r);
        settings = asSettings(d.settings) ?? settings;
        stats = asObject(d.stats) ?? stats;
        shape++;
        changed = true;
        break;
      }
      case 'kascade.added':
      case 'kascade.changed': {
        const r = d.kascade;
        if (!isRecord(r)) break;
        const m = records();
        const old = m.get(r.id);
        if (old === undefined || old.state !== r.state || old.name !== r.name || old.file !== r.file) shape++;
        m.set(r.id, r);
        changed = true;
        break;
      }
      case 'kascade.removed': {
        if (typeof d.id !== 'string' || !records().delete(d.id)) break;
        shape++;
        changed = true;
        break;
      }
      case 'box.stats': {
        stats = d;
        settings = asSettings(d.settings) ?? settings;
        const point = { down: finite(d.downRate), up: finite(d.upRate) };
        rates = rates.length >= RATE_POINTS ? [...rates.slice(rates.length - RATE_POINTS + 1), point] : [...rates, point];
        changed = true;
        break;
      }
      case 'settings': {
        // Not a stream event: the page's own GET/PATCH /settings answers.
        const s = asSettings(d);
        if (s === null) break;
        settings = s;
        changed = true;
        break;
      }
      default: // peer.*, dropped and future types do not change the page's state
    }
  }
  if (!changed) return state;
  return { kascades: map ?? state.kascades, settings, stats, rates, version: state.version + 1, shape };
}

/**
 * The ids the table shows: records whose state is in `states` (all when empty), sorted by name (then file, then
 * id) so rows keep their place while progress changes.
 * @param {UiState} state
 * @param {ReadonlySet<string>} states
 * @returns {string[]}
 */
export function visibleIds(state, states) {
  /** @type {{ key: string, id: string }[]} */
  const rows = [];
  for (const r of state.kascades.values()) {
    if (states.size > 0 && !states.has(r.state)) continue;
    const name = typeof r.name === 'string' ? r.name : typeof r.file === 'string' ? r.file : '';
    rows.push({ key: `${name.toLowerCase()}\u0000${String(r.file ?? '')}\u0000${r.id}`, id: r.id });
  }
  rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return rows.map((r) => r.id);
}

/** @param {unknown} v @returns {Record<string, unknown> | null} */
function asObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? /** @type {Record<string, unknown>} */ (v) : null;
}

/** @param {unknown} v @returns {v is KascadeRecord} */
function isRecord(v) {
  const o = asObject(v);
  return o !== null && typeof o.id === 'string' && o.id.length > 0 && typeof o.state === 'string';
}

/** @param {unknown} v @returns {Settings | null} */
function asSettings(v) {
  const o = asObject(v);
  if (o === null) return null;
  const { maxUpload, maxPeers, maxDownloads } = o;
  if (![maxUpload, maxPeers, maxDownloads].every((n) => typeof n === 'number' && Number.isFinite(n))) return null;
  return { maxUpload: /** @type {number} */ (maxUpload), maxPeers: /** @type {number} */ (maxPeers), maxDownloads: /** @type {number} */ (maxDownloads) };
}

/** @param {unknown} v */
function finite(v) {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
}

// @ts-check
// The box's page: wires the event stream (fetch + sse-reader, reconnecting with back-off and Last-Event-ID) into
// the reducer, and the reducer's state into the virtual table, the detail panel, the rate graph and the limits
// form; sends the user's actions to /api/v1/. docs/api.md is the contract.

import { ApiError, adoptToken, api, openEvents, saveToken } from './api-client.js';
import { drawRates } from './canvas.js';
import { createDetailView } from './detail-view.js';
import { rate } from './format.js';
import { RATE_POINTS, initialState, reduceAll, visibleIds } from './reducer.js';
import { createSseReader } from './sse-reader.js';
import { createTableView } from './table-view.js';

/** Reconnect back-off: 0.5 s doubling to 30 s, with jitter; a stream silent this long is dead (heartbeat: 15 s). */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
const SILENCE_MS = 45_000;
/** A .kascade larger than this is refused before upload (the box caps it too). */
const MAX_ADD_BYTES = 64 * 1024 * 1024;

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.querySelector(`[data-testid="${id}"]`));

let state = initialState();
/** @type {Set<string>} */
let filter = new Set();
let shownShape = -1;
let shownFilter = '';
/** @type {string[]} */
let ids = [];
let frameQueued = false;
let streamAbort = new AbortController();

const banner = $('banner');
const message = $('message');
const tokenForm = /** @type {HTMLFormElement} */ ($('token-form'));
const settingsForm = /** @type {HTMLFormElement} */ ($('settings'));
const graph = /** @type {HTMLCanvasElement} */ ($('rate-graph'));
const removeDialog = /** @type {HTMLDialogElement} */ ($('remove-dialog'));
const scroller = $('table');

const table = createTableView({
  scroller,
  rows: /** @type {HTMLElement} */ (scroller.querySelector('.rows')),
  spacerTop: $('spacer-top'),
  spacerBottom: $('spacer-bottom'),
  onAction: (action, id) => void act(action, id),
  onSelect: (id) => {
    table.select(id);
    detail.open(id, state.kascades.get(id));
  },
});
const detail = createDetailView({ root: $('detail'), onError: showError, onClose: () => table.select('') });

// ---- state → page, at most once a frame

/** @param {import('./reducer.js').UiEvent[]} events */
function apply(events) {
  const next = reduceAll(state, events);
  if (next === state) return;
  state = next;
  scheduleFrame();
}

function scheduleFrame() {
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(() => {
    frameQueued = false;
    paint();
  });
}

let paintedVersion = -1;
let paintedStats = /** @type {unknown} */ (null);
let paintedSettings = /** @type {unknown} */ (null);
function paint() {
  const f = [...filter].join(',');
  if (state.shape !== shownShape || f !== shownFilter) {
    ids = visibleIds(state, filter);
    shownShape = state.shape;
    shownFilter = f;
    $('count').textContent = filter.size ? `${ids.length} of ${state.kascades.size}` : `${ids.length}`;
    $('empty').hidden = ids.length > 0;
  }
  if (paintedVersion !== state.version) {
    table.update(ids, state.kascades);
    paintedVersion = state.version;
  }
  if (detail.id) {
    const r = state.kascades.get(detail.id);
    if (r) detail.show(r);
    else detail.close();
  }
  if (state.stats !== paintedStats) {
    paintedStats = state.stats;
    paintStats();
  }
  if (state.settings !== paintedSettings) {
    paintedSettings = state.settings;
    fillSettings();
  }
}

function paintStats() {
  const s = /** @type {Record<string, any>} */ (state.stats ?? {});
  $('rate-down').textContent = rate(s.downRate);
  $('rate-up').textContent = rate(s.upRate);
  const n = typeof s.kascades === 'number' ? s.kascades : state.kascades.size;
  const conns = typeof s.connections === 'number' ? ` · ${s.connections} connections` : '';
  $('totals').textContent = `${n} kascades · ▼ ${rate(s.downRate)} ▲ ${rate(s.upRate)}${conns}`;
  drawRates(graph, state.rates, RATE_POINTS);
}

// ---- the event stream

/** @param {'connecting' | 'connected' | 'disconnected'} kind @param {string} text */
function setBanner(kind, text) {
  banner.dataset.state = kind;
  banner.textContent = text;
}

async function streamLoop(/** @type {AbortSignal} */ signal) {
  let lastId = '';
  let attempt = 0;
  while (!signal.aborted) {
    const ac = new AbortController();
    const stop = () => ac.abort();
    signal.addEventListener('abort', stop);
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let silence;
    const arm = () => {
      clearTimeout(silence);
      silence = setTimeout(stop, SILENCE_MS);
    };
    try {
      arm();
      const res = await openEvents(lastId, ac.signal);
      setBanner('connected', 'Connected');
      const reader = /** @type {ReadableStream<Uint8Array>} */ (res.body).getReader();
      const sse = createSseReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        const events = sse.push(value);
        if (events.length === 0) continue;
        attempt = 0;
        lastId = sse.lastEventId();
        /** @type {import('./reducer.js').UiEvent[]} */
        const parsed = [];
        for (const e of events) {
          try {
            parsed.push({ type: e.type, data: JSON.parse(e.data) });
          } catch {
            // a malformed payload is skipped; the next snapshot or change repairs the view
          }
        }
        apply(parsed);
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        askToken('The box refused the token.');
        return;
      }
    } finally {
      clearTimeout(silence);
      signal.removeEventListener('abort', stop);
      ac.abort();
    }
    if (signal.aborted) return;
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt = Math.min(attempt + 1, 10);
    const until = Date.now() + delay;
    const tick = () => setBanner('disconnected', `Disconnected — retrying in ${Math.max(0, Math.ceil((until - Date.now()) / 1000))} s`);
    tick();
    const countdown = setInterval(tick, 1000);
    await new Promise((resolve) => {
      const t = setTimeout(resolve, delay);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve(undefined);
      }, { once: true });
    });
    clearInterval(countdown);
    if (!signal.aborted) setBanner('connecting', 'Reconnecting…');
  }
}

function start() {
  tokenForm.hidden = true;
  streamAbort.abort();
  streamAbort = new AbortController();
  setBanner('connecting', 'Connecting…');
  void streamLoop(streamAbort.signal);
  // The snapshot carries the settings too; this fills the form even before the stream answers.
  api('GET', 'settings')
    .then((s) => apply([{ type: 'settings', data: s }]))
    .catch(() => {});
}

/** @param {string} why */
function askToken(why) {
  streamAbort.abort();
  setBanner('disconnected', why);
  tokenForm.hidden = false;
  /** @type {HTMLInputElement} */ ($('token-input')).focus();
}

tokenForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const t = String(new FormData(tokenForm).get('token') ?? '').trim();
  if (!t) return;
  saveToken(t);
  tokenForm.reset();
  start();
});

// ---- actions

/** @param {unknown} e */
function showError(e) {
  if (e instanceof ApiError && e.status === 401) askToken('The box refused the token.');
  showMessage(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e), 'error');
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let messageTimer;
/** @param {string} text @param {'error' | 'info'} kind */
function showMessage(text, kind) {
  message.textContent = text;
  message.className = `message ${kind}`;
  message.hidden = false;
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => (message.hidden = true), 8000);
}

/** @param {import('./table-view.js').Action} action @param {string} id */
async function act(action, id) {
  try {
    const enc = encodeURIComponent(id);
    if (action === 'remove') {
      const ok = await confirmRemove(id);
      if (ok === null) return;
      const res = await api('DELETE', `kascades/${enc}?deleteData=${ok.deleteData}`);
      apply([{ type: 'kascade.removed', data: { v: 1, id } }]);
      showMessage(res?.deletedData ? 'Removed, with its data file.' : 'Removed (its data file is kept).', 'info');
      return;
    }
    const res = await api('POST', `kascades/${enc}/${action}`);
    if (res && typeof res === 'object' && res.kascade) apply([{ type: 'kascade.changed', data: res }]);
    if (action === 'verify') showMessage('Verification requested.', 'info');
  } catch (e) {
    showError(e);
  }
}

/** @param {string} id @returns {Promise<{ deleteData: boolean } | null>} */
function confirmRemove(id) {
  const r = state.kascades.get(id);
  $('remove-name').textContent = r ? String(r.name ?? r.file ?? id) : id;
  const box = /** @type {HTMLInputElement} */ ($('remove-delete-data'));
  box.checked = false;
  removeDialog.returnValue = '';
  removeDialog.showModal();
  return new Promise((resolve) => {
    removeDialog.addEventListener('close', () => resolve(removeDialog.returnValue === 'remove' ? { deleteData: box.checked } : null), { once: true });
  });
}

/** @param {Iterable<File>} files */
async function addFiles(files) {
  const paused = /** @type {HTMLInputElement} */ ($('add-paused')).checked;
  for (const file of files) {
    if (file.size > MAX_ADD_BYTES) {
      showMessage(`${file.name}: over ${MAX_ADD_BYTES / 1024 / 1024} MiB, not a .kascade`, 'error');
      continue;
    }
    try {
      const res = await api('POST', `kascades${paused ? '?paused=true' : ''}`, { body: file });
      showMessage(`Added ${file.name} as ${res?.file ?? res?.id}.`, 'info');
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        const existing = /** @type {any} */ (e.body)?.existing ?? /** @type {any} */ (e.body)?.error?.existing;
        showMessage(`${file.name} is already in the box${existing ? ` (${existing})` : ''}.`, 'error');
      } else {
        showError(e);
      }
    }
  }
}

const addInput = /** @type {HTMLInputElement} */ ($('add-input'));
addInput.addEventListener('change', () => {
  const files = [...(addInput.files ?? [])];
  addInput.value = '';
  void addFiles(files);
});

// Drag and drop anywhere on the page.
const drop = $('drop');
let dragDepth = 0;
const hasFiles = (/** @type {DragEvent} */ e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
window.addEventListener('dragenter', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth++;
  drop.hidden = false;
});
window.addEventListener('dragover', (e) => {
  if (hasFiles(e)) e.preventDefault();
});
window.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) drop.hidden = true;
});
window.addEventListener('drop', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth = 0;
  drop.hidden = true;
  void addFiles([...(e.dataTransfer?.files ?? [])]);
});

// ---- filter and limits

const filterSelect = /** @type {HTMLSelectElement} */ ($('filter'));
filterSelect.addEventListener('change', () => {
  filter = new Set(filterSelect.value.split(',').filter(Boolean));
  scroller.scrollTop = 0;
  scheduleFrame();
});

/** Fields the user is editing are not overwritten by the stream's settings. */
const dirty = new Set();
settingsForm.addEventListener('input', (e) => dirty.add(/** @type {HTMLInputElement} */ (e.target).name));

function fillSettings() {
  const s = state.settings;
  if (!s) return;
  /** @type {[string, number][]} */
  const values = [['maxUpload', Math.round(s.maxUpload / 1024)], ['maxPeers', s.maxPeers], ['maxDownloads', s.maxDownloads]];
  for (const [name, v] of values) {
    const input = /** @type {HTMLInputElement} */ (settingsForm.elements.namedItem(name));
    if (!dirty.has(name) && document.activeElement !== input) input.value = String(v);
  }
}

settingsForm.addEventListener('submit', (e) => {
  e.preventDefault();
  /** @type {Record<string, number>} */
  const patch = {};
  for (const name of dirty) {
    const input = /** @type {HTMLInputElement} */ (settingsForm.elements.namedItem(name));
    const n = Number(input.value);
    if (input.value === '' || !Number.isInteger(n) || n < 0) {
      showMessage(`${name}: a whole number ≥ 0, please`, 'error');
      return;
    }
    patch[name] = name === 'maxUpload' ? n * 1024 : n;
  }
  if (Object.keys(patch).length === 0) return;
  api('PATCH', 'settings', { json: patch })
    .then((res) => {
      dirty.clear();
      apply([{ type: 'settings', data: res }]);
      showMessage('Limits applied.', 'info');
    })
    .catch(showError);
});

// ---- start

addEventListener('resize', () => {
  paintedStats = null; // redraw the graph at the new width
  scheduleFrame();
});
if (adoptToken()) start();
else askToken('No API token.');

// @ts-check
// The kascade table, virtualised: only the rows in view (plus a few either side) are in the DOM, the rest is two
// spacers, so 10,000 kascades cost what 40 do. Row elements are reused as the window moves; a row's cells are
// rewritten only when its record object changed (the reducer makes a new one per change).

import { bytes, duration, percent, rate } from './format.js';
import { rowWindow } from './table-window.js';

/** Row height in px: must match --row in style.css. */
export const ROW_HEIGHT = 36;
const OVERSCAN = 6;

/** @typedef {import('./reducer.js').KascadeRecord} KascadeRecord */
/** @typedef {'pause' | 'resume' | 'verify' | 'remove'} Action */

/**
 * @typedef {object} Slot
 * @property {HTMLElement} el
 * @property {string} id
 * @property {KascadeRecord | null} rec
 * @property {Record<string, HTMLElement>} cells
 */

/**
 * @param {{ scroller: HTMLElement, rows: HTMLElement, spacerTop: HTMLElement, spacerBottom: HTMLElement,
 *   onAction: (action: Action, id: string) => void, onSelect: (id: string) => void }} p
 */
export function createTableView({ scroller, rows, spacerTop, spacerBottom, onAction, onSelect }) {
  /** @type {readonly string[]} */
  let ids = [];
  /** @type {ReadonlyMap<string, KascadeRecord>} */
  let records = new Map();
  let selected = '';
  /** @type {Slot[]} */
  const slots = [];
  let queued = false;

  const schedule = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      render();
    });
  };

  function render() {
    const w = rowWindow({ scrollTop: scroller.scrollTop, viewportHeight: scroller.clientHeight, rowHeight: ROW_HEIGHT, total: ids.length, overscan: OVERSCAN });
    const count = w.last - w.first + 1;
    while (slots.length < count) {
      const s = makeSlot();
      slots.push(s);
      rows.append(s.el);
    }
    while (slots.length > count) slots.pop()?.el.remove();
    spacerTop.style.height = `${w.top}px`;
    spacerBottom.style.height = `${w.bottom}px`;
    for (let k = 0; k < count; k++) {
      const slot = /** @type {Slot} */ (slots[k]);
      const id = /** @type {string} */ (ids[w.first + k]);
      const rec = records.get(id) ?? null;
      if (slot.id !== id || slot.rec !== rec) {
        slot.id = id;
        slot.rec = rec;
        slot.el.dataset.id = id;
        slot.el.setAttribute('aria-rowindex', String(w.first + k + 2));
        if (rec) fill(slot, rec);
      }
      slot.el.classList.toggle('selected', id === selected);
    }
  }

  rows.addEventListener('click', (e) => {
    const target = /** @type {HTMLElement} */ (e.target);
    const row = target.closest('[data-testid="row"]');
    const id = row instanceof HTMLElement ? row.dataset.id : undefined;
    if (!id) return;
    const button = target.closest('button');
    const action = button?.dataset.action;
    if (action === 'pause' || action === 'resume' || action === 'verify' || action === 'remove') onAction(action, id);
    else onSelect(id);
  });
  scroller.addEventListener('scroll', schedule, { passive: true });
  new ResizeObserver(schedule).observe(scroller);

  return {
    /** @param {readonly string[]} nextIds @param {ReadonlyMap<string, KascadeRecord>} nextRecords */
    update(nextIds, nextRecords) {
      ids = nextIds;
      records = nextRecords;
      schedule();
    },
    /** @param {string} id */
    select(id) {
      selected = id;
      schedule();
    },
    /** Renders now (tests and measurements; normal updates wait for the next frame). */
    render,
  };
}

/** @returns {Slot} */
function makeSlot() {
  const el = document.createElement('div');
  el.className = 'row';
  el.setAttribute('role', 'row');
  el.dataset.testid = 'row';
  /** @type {Record<string, HTMLElement>} */
  const cells = {};
  for (const c of ['name', 'state', 'progress', 'size', 'down', 'up', 'peers', 'eta', 'actions']) {
    const span = document.createElement('span');
    span.className = `c-${c}`;
    span.setAttribute('role', 'cell');
    span.dataset.testid = c;
    el.append(span);
    cells[c] = span;
  }
  const progress = /** @type {HTMLElement} */ (cells.progress);
  delete progress.dataset.testid;
  const box = document.createElement('div');
  box.className = 'progress';
  const bar = document.createElement('div');
  bar.className = 'bar';
  const pct = document.createElement('span');
  pct.className = 'pct';
  pct.dataset.testid = 'progress';
  box.append(bar, pct);
  progress.append(box);
  cells.bar = bar;
  cells.pct = pct;
  const actions = /** @type {HTMLElement} */ (cells.actions);
  delete actions.dataset.testid;
  for (const [action, label, title] of /** @type {const} */ ([['pause', '⏸', 'pause'], ['verify', '✓', 're-verify its data'], ['remove', '✕', 'remove']])) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.action = action;
    b.dataset.testid = action;
    b.textContent = label;
    b.title = title;
    b.setAttribute('aria-label', title);
    actions.append(b);
    cells[action] = b;
  }
  return { el, id: '', rec: null, cells };
}

/** @param {Slot} slot @param {KascadeRecord} r */
function fill(slot, r) {
  const c = slot.cells;
  const set = (/** @type {string} */ key, /** @type {string} */ text) => {
    const el = /** @type {HTMLElement} */ (c[key]);
    if (el.textContent !== text) el.textContent = text;
  };
  const name = typeof r.name === 'string' ? r.name : String(r.file ?? r.id);
  set('name', name);
  /** @type {HTMLElement} */ (c.name).title = typeof r.file === 'string' ? `${name}\n${r.file}` : name;
  set('state', r.state);
  /** @type {HTMLElement} */ (c.state).title = typeof r.error === 'string' ? r.error : '';
  slot.el.className = `row state-${r.state}`;
  slot.el.dataset.state = r.state;
  const p = typeof r.progress === 'number' ? Math.min(1, Math.max(0, r.progress)) : 0;
  /** @type {HTMLElement} */ (c.bar).style.width = `${p * 100}%`;
  set('pct', percent(p));
  set('size', bytes(r.size));
  set('down', rate(r.downRate));
  set('up', rate(r.upRate));
  set('peers', typeof r.peers === 'number' ? String(r.peers) : '–');
  set('eta', duration(r.eta));
  const toggle = /** @type {HTMLElement} */ (c.pause);
  const paused = r.state === 'paused';
  const action = paused ? 'resume' : 'pause';
  if (toggle.dataset.action !== action) {
    toggle.dataset.action = action;
    toggle.dataset.testid = action;
    toggle.textContent = paused ? '▶' : '⏸';
    toggle.title = action;
    toggle.setAttribute('aria-label', action);
  }
}

// @ts-check
// The page's two pictures on <canvas>: the global rate graph (down and up, from box.stats) and a kascade's block
// map (from its runs). Colours come from the stylesheet's variables so dark mode follows.

import { foldRuns } from './block-map.js';

/** @param {string} name */
function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

/** Sizes the canvas's backing store to its CSS box × devicePixelRatio; answers its context and CSS size. */
function prepare(/** @type {HTMLCanvasElement} */ canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth || canvas.width));
  const h = Math.max(1, Math.round(canvas.clientHeight || canvas.height));
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

/**
 * @param {HTMLCanvasElement} canvas
 * @param {readonly import('./reducer.js').RatePoint[]} points  oldest first, one a second
 * @param {number} slots  how many points the x axis spans
 */
export function drawRates(canvas, points, slots) {
  const { ctx, w, h } = prepare(canvas);
  ctx.strokeStyle = cssVar('--line');
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(0, h - 0.5);
  ctx.lineTo(w, h - 0.5);
  ctx.stroke();
  const max = Math.max(1024, ...points.map((p) => Math.max(p.down, p.up)));
  const x = (/** @type {number} */ i) => w - ((points.length - 1 - i) / Math.max(1, slots - 1)) * w;
  const y = (/** @type {number} */ v) => h - 2 - (v / max) * (h - 4);
  for (const [key, color] of /** @type {const} */ ([['down', '--ok'], ['up', '--accent']])) {
    if (points.length === 0) break;
    ctx.strokeStyle = cssVar(color);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    points.forEach((p, i) => (i === 0 ? ctx.moveTo(x(i), y(p[key])) : ctx.lineTo(x(i), y(p[key]))));
    ctx.stroke();
  }
}

/** Cell size in CSS px of the block map's grid. */
const CELL = 6;

/**
 * @param {HTMLCanvasElement} canvas
 * @param {unknown} runs  as GET /kascades/{id}/blocks?format=runs answers them
 * @param {number} blocks
 */
export function drawBlockMap(canvas, runs, blocks) {
  const { ctx, w, h } = prepare(canvas);
  const cols = Math.max(1, Math.floor(w / CELL));
  const rows = Math.max(1, Math.floor(h / CELL));
  const cells = foldRuns(runs, blocks, cols * rows);
  const used = Math.ceil(cells.length / cols);
  const cw = w / cols;
  const ch = Math.min(h / Math.max(1, used), 3 * CELL);
  const have = cssVar('--ok');
  const flight = cssVar('--flight');
  const missing = cssVar('--line');
  cells.forEach((c, i) => {
    const cx = (i % cols) * cw;
    const cy = Math.floor(i / cols) * ch;
    // A cell is drawn as its shares, left to right: have, in flight, missing.
    let off = 0;
    for (const [share, color] of /** @type {const} */ ([[c.have, have], [c.flight, flight], [c.missing, missing]])) {
      if (share <= 0) continue;
      ctx.fillStyle = color;
      ctx.fillRect(cx + off * (cw - 1), cy, share * (cw - 1), ch - 1);
      off += share;
    }
  });
}

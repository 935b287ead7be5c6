// @ts-check
// Row windowing for the page's virtualised table: which rows to put in the DOM for a scroll position, and how
// tall the spacers above and below them are so the scroll bar still spans every row. Pure arithmetic.

/**
 * @typedef {object} RowWindow
 * @property {number} first   index of the first row to render (0 when there are none)
 * @property {number} last    index of the last row to render, inclusive (-1 when there are none)
 * @property {number} top     height in px of the spacer above the rendered rows
 * @property {number} bottom  height in px of the spacer below them
 */

/**
 * @param {{ scrollTop: number, viewportHeight: number, rowHeight: number, total: number, overscan?: number }} p
 *   `overscan` rows are rendered beyond each edge of the viewport, so a fast scroll does not show blank space.
 * @returns {RowWindow}
 */
export function rowWindow({ scrollTop, viewportHeight, rowHeight, total, overscan = 4 }) {
  const n = Math.max(0, Math.floor(nonNegative(total)));
  const h = nonNegative(rowHeight);
  if (n === 0 || h === 0) return { first: 0, last: -1, top: 0, bottom: 0 };
  const over = Math.floor(nonNegative(overscan));
  const view = nonNegative(viewportHeight);
  const maxTop = Math.max(0, n * h - view);
  const top = Math.min(nonNegative(scrollTop), maxTop);
  const firstSeen = Math.min(n - 1, Math.floor(top / h));
  const lastSeen = Math.min(n - 1, Math.max(firstSeen, Math.ceil((top + view) / h) - 1));
  const first = Math.max(0, firstSeen - over);
  const last = Math.min(n - 1, lastSeen + over);
  return { first, last, top: first * h, bottom: (n - 1 - last) * h };
}

/** @param {number} v */
function nonNegative(v) {
  return Number.isFinite(v) && v > 0 ? v : 0;
}

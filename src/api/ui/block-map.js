// @ts-check
// The detail panel's block-map picture: `GET /kascades/{id}/blocks?format=runs` answers runs of block states in
// block order; this folds them into `cells` equal slices of the file, each with the share of its blocks that are
// held, in flight and missing, for the canvas to colour. Pure; O(runs + cells), whatever the block count.

/** @typedef {{ have: number, flight: number, missing: number }} Cell  shares in 0..1 summing to 1 */

/**
 * @param {unknown} runs   `[[state, count]…]`, state 'h' | 'f' | 'm'; anything else is counted as missing
 * @param {number} blocks  the kascade's block count
 * @param {number} cells   how many cells to draw (at most `blocks`)
 * @returns {Cell[]}
 */
export function foldRuns(runs, blocks, cells) {
  const n = Math.max(0, Math.floor(blocks));
  const c = Math.max(0, Math.min(n, Math.floor(cells)));
  /** @type {Cell[]} */
  const out = [];
  if (c === 0) return out;
  const acc = Array.from({ length: c }, () => ({ h: 0, f: 0, m: 0 }));
  const per = n / c; // blocks per cell, ≥ 1
  let pos = 0;
  for (const run of Array.isArray(runs) ? runs : []) {
    if (!Array.isArray(run) || pos >= n) continue;
    const count = Math.min(n - pos, Math.max(0, Math.floor(Number(run[1]) || 0)));
    const key = run[0] === 'h' ? 'h' : run[0] === 'f' ? 'f' : 'm';
    let left = count;
    while (left > 0) {
      const cell = Math.min(c - 1, Math.floor(pos / per));
      const cellEnd = Math.min(n, Math.ceil((cell + 1) * per));
      const take = Math.max(1, Math.min(left, cellEnd - pos)); // ≥ 1 even where float rounding meets pos
      /** @type {{ h: number, f: number, m: number }} */ (acc[cell])[key] += take;
      pos += take;
      left -= take;
    }
  }
  for (const a of acc) {
    const total = a.h + a.f + a.m;
    // Blocks the runs did not cover are missing.
    out.push(total === 0 ? { have: 0, flight: 0, missing: 1 } : { have: a.h / total, flight: a.f / total, missing: a.m / total });
  }
  return out;
}

// The page's row windowing (src/api/ui/table-window.js) and block-map folding (src/api/ui/block-map.js): the rows
// in view plus overscan, spacers that keep the scroll height exact, clamping, and bad inputs.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { foldRuns } from '../../src/api/ui/block-map.js';
import { rowWindow } from '../../src/api/ui/table-window.js';

describe('rowWindow', () => {
  it('renders the rows in view plus the overscan, spacers covering the rest', () => {
    expect(rowWindow({ scrollTop: 0, viewportHeight: 360, rowHeight: 36, total: 10_000, overscan: 4 })).toEqual({ first: 0, last: 13, top: 0, bottom: (10_000 - 14) * 36 });
    expect(rowWindow({ scrollTop: 3600, viewportHeight: 360, rowHeight: 36, total: 10_000, overscan: 4 })).toEqual({ first: 96, last: 113, top: 96 * 36, bottom: (10_000 - 114) * 36 });
    // A partly visible row at the top and at the bottom is rendered.
    expect(rowWindow({ scrollTop: 18, viewportHeight: 36, rowHeight: 36, total: 100, overscan: 0 })).toEqual({ first: 0, last: 1, top: 0, bottom: 98 * 36 });
  });

  it('clamps a scroll past the end (rows removed under the viewport) to the last page', () => {
    expect(rowWindow({ scrollTop: 1e9, viewportHeight: 360, rowHeight: 36, total: 100, overscan: 2 })).toEqual({ first: 88, last: 99, top: 88 * 36, bottom: 0 });
  });

  it('fewer rows than fit: all of them, no spacers', () => {
    expect(rowWindow({ scrollTop: 0, viewportHeight: 1000, rowHeight: 36, total: 3 })).toEqual({ first: 0, last: 2, top: 0, bottom: 0 });
  });

  it('no rows, or nonsense numbers, give an empty window instead of NaN', () => {
    const empty = { first: 0, last: -1, top: 0, bottom: 0 };
    expect(rowWindow({ scrollTop: 0, viewportHeight: 500, rowHeight: 36, total: 0 })).toEqual(empty);
    expect(rowWindow({ scrollTop: 0, viewportHeight: 500, rowHeight: 0, total: 10 })).toEqual(empty);
    expect(rowWindow({ scrollTop: 0, viewportHeight: 500, rowHeight: Number.NaN, total: 10 })).toEqual(empty);
    expect(rowWindow({ scrollTop: Number.NaN, viewportHeight: -5, rowHeight: 36, total: 10, overscan: -3 })).toEqual({ first: 0, last: 0, top: 0, bottom: 9 * 36 });
  });

  it('for any input: in range, covers the viewport, and top + rows + bottom = total height (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50_000 }),
        fc.integer({ min: 1, max: 80 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 0, max: 3_000_000 }),
        fc.integer({ min: 0, max: 20 }),
        (total, rowHeight, viewportHeight, scrollTop, overscan) => {
          const w = rowWindow({ scrollTop, viewportHeight, rowHeight, total, overscan });
          if (total === 0) {
            expect(w.last).toBe(-1);
            return;
          }
          expect(w.first).toBeGreaterThanOrEqual(0);
          expect(w.last).toBeLessThan(total);
          expect(w.first).toBeLessThanOrEqual(w.last);
          expect(w.top + (w.last - w.first + 1) * rowHeight + w.bottom).toBe(total * rowHeight);
          const top = Math.min(scrollTop, Math.max(0, total * rowHeight - viewportHeight));
          expect(w.top).toBeLessThanOrEqual(top); // the first visible row is rendered
          expect(w.top + (w.last - w.first + 1) * rowHeight).toBeGreaterThanOrEqual(Math.min(total * rowHeight, top + viewportHeight));
          // Bounded: never more than the viewport's rows, one partial row at each edge, and the overscan.
          expect(w.last - w.first + 1).toBeLessThanOrEqual(Math.ceil(viewportHeight / rowHeight) + 2 + 2 * overscan);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('foldRuns', () => {
  it('one cell per block when there are fewer blocks than cells', () => {
    expect(foldRuns([['h', 2], ['f', 1], ['m', 1]], 4, 100)).toEqual([
      { have: 1, flight: 0, missing: 0 },
      { have: 1, flight: 0, missing: 0 },
      { have: 0, flight: 1, missing: 0 },
      { have: 0, flight: 0, missing: 1 },
    ]);
  });

  it('shares per cell when blocks outnumber cells', () => {
    expect(foldRuns([['h', 3], ['m', 5]], 8, 2)).toEqual([
      { have: 0.75, flight: 0, missing: 0.25 },
      { have: 0, flight: 0, missing: 1 },
    ]);
  });

  it('uncovered blocks are missing; runs past the end, negative counts and unknown states are bounded', () => {
    expect(foldRuns([['h', 1]], 3, 3)).toEqual([{ have: 1, flight: 0, missing: 0 }, { have: 0, flight: 0, missing: 1 }, { have: 0, flight: 0, missing: 1 }]);
    expect(foldRuns([['h', 1e12], ['x', 5]], 2, 2)).toEqual([{ have: 1, flight: 0, missing: 0 }, { have: 1, flight: 0, missing: 0 }]);
    expect(foldRuns([['h', -4], 'junk', ['f', 'NaN'], ['q', 1]], 1, 1)).toEqual([{ have: 0, flight: 0, missing: 1 }]);
    expect(foldRuns('not runs', 0, 10)).toEqual([]);
  });

  it('counts every block once for any runs and cell count (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('h', 'f', 'm'), fc.integer({ min: 0, max: 5000 })), { maxLength: 40 }),
        fc.integer({ min: 1, max: 2000 }),
        (runs, cells) => {
          const blocks = runs.reduce((n, r) => n + r[1], 0);
          const out = foldRuns(runs, blocks, cells);
          expect(out).toHaveLength(Math.min(blocks, cells));
          const have = runs.filter((r) => r[0] === 'h').reduce((n, r) => n + r[1], 0);
          // Cells are near-equal slices, so the have-share summed over cells × blocks per cell ≈ have blocks.
          const sum = out.reduce((n, c) => n + c.have, 0) * (blocks / Math.max(1, out.length));
          if (out.length > 0) expect(Math.abs(sum - have)).toBeLessThanOrEqual(out.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});

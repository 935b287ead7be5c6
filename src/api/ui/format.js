// @ts-check
// Number formatting for the page (sizes, rates, times, progress). Pure.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** @param {unknown} n bytes */
export function bytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return '–';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${UNITS[u]}`;
}

/** @param {unknown} n bytes per second */
export function rate(n) {
  return typeof n === 'number' && n > 0 ? `${bytes(n)}/s` : '–';
}

/** @param {unknown} s seconds, null when unknown */
export function duration(s) {
  if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) return '–';
  const t = Math.round(s);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m ${t % 60}s`;
  if (t < 86400) return `${Math.floor(t / 3600)}h ${Math.floor((t % 3600) / 60)}m`;
  return `${Math.floor(t / 86400)}d ${Math.floor((t % 86400) / 3600)}h`;
}

/** @param {unknown} p progress 0..1 */
export function percent(p) {
  const v = typeof p === 'number' && Number.isFinite(p) ? Math.min(1, Math.max(0, p)) : 0;
  // Never show 100% before it is: 99.96% reads as 99.9%.
  return `${(Math.floor(v * 1000) / 10).toFixed(1)}%`;
}

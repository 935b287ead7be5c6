// Remembering per-peer facts with a cap (RELIABILITY: memory bounded whatever peers and trackers say): the newest
// entry goes last, and past the cap the oldest goes. A Map keeps insertion order, so the oldest is the first key.

/** Set `key` to `value` as the newest entry of `map`; drop the oldest entries while more than `cap` are held. */
export function setNewest<K, V>(map: Map<K, V>, key: K, value: V, cap: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > cap) map.delete(map.keys().next().value as K);
}

/** Add `key` as the newest member of `set`; drop the oldest members while more than `cap` are held. */
export function addNewest<K>(set: Set<K>, key: K, cap: number): void {
  set.delete(key);
  set.add(key);
  while (set.size > cap) set.delete(set.values().next().value as K);
}

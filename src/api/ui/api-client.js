// @ts-check
// The page's calls to /api/v1/: the bearer token (from the URL fragment, then sessionStorage), JSON requests
// with the box's error shape turned into ApiError, and the event stream read through fetch().

const TOKEN_KEY = 'kfetch.token';

/** An answer that was not 2xx: `code` is the box's KF_E_… code (or 'KF_E_API_HTTP'), `status` the HTTP one. */
export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message @param {unknown} [body] */
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/**
 * Takes `#token=…` out of the address bar (so it is neither bookmarked nor shown) into sessionStorage; answers
 * the token in effect, or '' if none.
 * @returns {string}
 */
export function adoptToken() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) {
    const t = decodeURIComponent(m[1] ?? '');
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

/** @param {string} token */
export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

/**
 * @param {string} method
 * @param {string} path  under /api/v1/, e.g. 'kascades/abc/pause'
 * @param {{ body?: BodyInit, json?: unknown, signal?: AbortSignal }} [opts]
 * @returns {Promise<any>} the parsed JSON answer (null for an empty one)
 */
export async function api(method, path, opts = {}) {
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${token()}`, Accept: 'application/json' };
  let body = opts.body;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  /** @type {RequestInit} */
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) init.body = body;
  if (opts.signal) init.signal = opts.signal;
  const res = await fetch(`/api/v1/${path}`, init);
  const text = await res.text();
  /** @type {any} */
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const err = parsed && typeof parsed === 'object' ? parsed.error : null;
    const code = err && typeof err.code === 'string' ? err.code : 'KF_E_API_HTTP';
    const message = err && typeof err.message === 'string' ? err.message : `${method} ${path} answered ${res.status}`;
    throw new ApiError(res.status, code, message, parsed);
  }
  return parsed;
}

/**
 * Opens the event stream; answers the response (the caller reads its body).
 * @param {string} lastEventId  '' for a fresh start
 * @param {AbortSignal} signal
 */
export async function openEvents(lastEventId, signal) {
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${token()}`, Accept: 'text/event-stream' };
  if (lastEventId) headers['Last-Event-ID'] = lastEventId;
  const res = await fetch('/api/v1/events', { headers, signal, cache: 'no-store' });
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => {});
    throw new ApiError(res.status, res.status === 401 ? 'KF_E_API_AUTH' : 'KF_E_API_HTTP', `events answered ${res.status}`);
  }
  return res;
}

// The box settings the control API reads and changes at run time (`GET/PATCH /api/v1/settings`): the upload rate,
// the client addresses served at once, the downloads run at once. Applied at once; flags set them at start.
// Pure validation here; box-run.ts supplies the control. Used by api-routes.ts.

import { apiError } from './api-reply.js';

export interface BoxSettings {
  /** Upload bytes/s over all clients, 0 = no limit. */
  maxUpload: number;
  maxPeers: number;
  maxDownloads: number;
}

export interface SettingsControl {
  get(): BoxSettings;
  /** Apply what `patch` names; returns the settings now. */
  set(patch: Partial<BoxSettings>): BoxSettings;
}

const BOUNDS: Record<keyof BoxSettings, [number, number]> = {
  maxUpload: [0, 2 ** 40],
  maxPeers: [1, 100_000],
  maxDownloads: [1, 1000],
};

/** A PATCH body checked: only known keys, each an integer within its bounds. */
export function parseSettingsPatch(body: Record<string, unknown>): Partial<BoxSettings> {
  const out: Partial<BoxSettings> = {};
  for (const [key, value] of Object.entries(body)) {
    if (key === 'v') continue;
    if (!Object.hasOwn(BOUNDS, key)) throw apiError('KF_E_API_REQUEST', `unknown setting ${JSON.stringify(key.slice(0, 40))}; known: ${Object.keys(BOUNDS).join(', ')}`, key.slice(0, 40));
    const [lo, hi] = BOUNDS[key as keyof BoxSettings];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < lo || value > hi) {
      throw apiError('KF_E_API_REQUEST', `${key} must be an integer from ${lo} to ${hi}`, key);
    }
    out[key as keyof BoxSettings] = value;
  }
  if (Object.keys(out).length === 0) throw apiError('KF_E_API_REQUEST', `name at least one of ${Object.keys(BOUNDS).join(', ')}`, 'body');
  return out;
}

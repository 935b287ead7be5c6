// Where kfetch keeps its state when --home / KFETCH_HOME is not given: $XDG_STATE_HOME/kfetch or ~/.local/state/kfetch.

import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultHome(): string {
  const xdg = process.env.XDG_STATE_HOME;
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.local', 'state'), 'kfetch');
}

// Every error code is documented in docs/errors.md with its exit status, and every documented code exists.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, KfetchError } from '../../src/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map([...doc.matchAll(/^\| `(KF_E_[A-Z_]+)` \| (\d+) \|/gm)].map((m) => [m[1]!, Number(m[2])]));

describe('error catalogue', () => {
  it('documents every code with its exit status', () => {
    for (const [code, { exit }] of Object.entries(ERROR_CATALOGUE)) expect(documented.get(code), code).toBe(exit);
  });
  it('documents no code that does not exist', () => {
    for (const code of documented.keys()) expect(Object.keys(ERROR_CATALOGUE)).toContain(code);
  });
  it('renders one line naming file and field', () => {
    const e = new KfetchError('KF_E_KASCADE_SIZE', 'filesize is negative', { file: 'x.json', field: 'filesize' });
    expect(e.toLine()).toBe('x.json: filesize: filesize is negative [KF_E_KASCADE_SIZE]');
    expect(e.exitCode).toBe(3);
  });
});

// The KfetchError a promise rejects with (the test fails if it resolves or rejects with anything else).

import { expect } from 'vitest';
import { KfetchError } from '../../src/errors.js';

export async function failure(p: Promise<unknown>): Promise<KfetchError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KfetchError);
  return err as KfetchError;
}

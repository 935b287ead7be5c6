// Bounded waiting for tests (issue 10): wait for an event by polling for it, bound a promise, or watch that
// something stays absent. Bounds are generous on purpose — a loaded machine makes a test slower, never red; a bound
// only fails when the thing does not happen at all. Speed claims belong in bench/, not here.

const POLL_MS = 10;

/** Poll `cond` every 10 ms until it holds; throws after `ms` (naming `what`) if it never does. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const end = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`${what} not met in ${ms} ms`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** `p`'s value, or a rejection naming `what` if it has not settled within `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not settled in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Watch `cond` for `ms` and throw (naming `what`) as soon as it holds. For absence claims only ("nothing more is
 * sent"), where nothing legitimate could make `cond` true however slow the machine is.
 */
export async function never(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  for (;;) {
    if (cond()) throw new Error(`${what} happened`);
    if (performance.now() > end) return;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

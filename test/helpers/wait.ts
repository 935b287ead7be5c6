// Bounded polling for tests: wait until a condition holds, failing after a time limit.

/** Poll `cond` every 10 ms for at most `ms`. */
export async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Waiting on a promise for a bounded time, where running out of time is an answer, not an error.

/** True when `p` resolves within ms (its rejection is thrown), false when the time ran out first. */
export async function resolvesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

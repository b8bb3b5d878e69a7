/**
 * `work`, or a rejection with `timeoutError()` once `ms` have passed without it settling. The
 * work itself is not cancelled (a sent Redis command, a ping in flight): its late outcome is
 * ignored. The cache's command budget, the readiness checks and the scrape-time readings use it.
 */
export function withinTime<R>(work: Promise<R>, ms: number, timeoutError: () => Error): Promise<R> {
  work.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

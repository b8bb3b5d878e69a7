/**
 * Runs the calls of a page in parallel and waits for all; the first failure cancels the others
 * (through the signal each call is given) and is the page's answer. Each call keeps its own
 * deadline, so the page takes at most as long as the slowest deadline.
 */
export async function fanOut<const P extends readonly Promise<unknown>[]>(
  calls: (signal: AbortSignal) => P,
): Promise<{ -readonly [K in keyof P]: Awaited<P[K]> }> {
  const controller = new AbortController();
  const started = calls(controller.signal);
  try {
    return (await Promise.all(started)) as { -readonly [K in keyof P]: Awaited<P[K]> };
  } catch (err) {
    controller.abort();
    // The cancelled calls fail too; their errors say nothing new.
    for (const call of started) call.catch(() => {});
    throw err;
  }
}

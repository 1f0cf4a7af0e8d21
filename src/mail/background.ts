/**
 * Work that must not hold up a response (sending mail: a slow SMTP server must not slow a
 * page, and a reset request must answer in the same time whether or not a mail goes out).
 * Failures are logged, never thrown at the caller; shutdown waits for what is in flight.
 */
export function createBackgroundJobs(log: (message: string, error: unknown) => void) {
  const pending = new Set<Promise<void>>();
  return {
    /** Starts `job` now and returns at once. */
    run(what: string, job: () => Promise<void>): void {
      const running: Promise<void> = job()
        .catch((error: unknown) => log(`${what} failed`, error))
        .finally(() => pending.delete(running));
      pending.add(running);
    },

    /** Resolves when every job started so far (and any they started) has finished. */
    async settled(): Promise<void> {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}

export type BackgroundJobs = ReturnType<typeof createBackgroundJobs>;

/**
 * Work that must not hold up a response (sending mail: a slow SMTP server must not slow a
 * page, and a reset request must answer in the same time whether or not a mail goes out).
 * Failures are logged, never thrown at the caller; shutdown waits for what is in flight.
 */
export function createBackgroundJobs(log: (message: string, error: unknown) => void) {
  const pending = new Set<Promise<void>>();
  return {
    /**
     * Starts `job` on the next turn of the event loop and returns at once: the response the
     * caller is about to send is written first, before any of the job's queries run.
     */
    run(what: string, job: () => Promise<void>): void {
      const running: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
        .then(job)
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

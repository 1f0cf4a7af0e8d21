/**
 * Preloaded (`node --import`) into every server the benchmark starts: when the benchmark
 * process is gone (killed without a chance to clean up), the server stops too instead of
 * lingering. It checks the parent pid twice a second on an unref'd timer, which costs nothing
 * measurable and keeps no process alive.
 */
const parent = process.ppid;
const timer = setInterval(() => {
  if (process.ppid !== parent) {
    process.kill(process.pid, 'SIGTERM');
    setTimeout(() => process.exit(1), 3000).unref();
    clearInterval(timer);
  }
}, 500);
timer.unref();

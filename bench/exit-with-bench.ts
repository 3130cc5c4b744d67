/**
 * Preloaded into every process the bench starts: their IPC channel to the bench closes however the
 * bench dies (even SIGKILL), and then they shut down as if told to, leaving no server behind.
 */
process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));

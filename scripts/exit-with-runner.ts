/**
 * Preloaded into each service the runner starts. The runner puts every service in its own process
 * group, so a terminal's Ctrl-C reaches the runner alone and it can stop the services in order; the
 * price is that a runner killed with SIGKILL would leave them running, holding their ports. Their
 * IPC channel to the runner closes however the runner dies: then shut down as if told to.
 */
process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));

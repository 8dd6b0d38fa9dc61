// Preloaded into every child of the demo (`--import`): when the demo goes away without stopping its
// children (killed, or its output closed under it), the IPC channel disconnects, and the child stops
// the way SIGTERM stops it. The channel does not keep the child alive on its own.
process.channel?.unref();
process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));

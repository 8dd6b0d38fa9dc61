/**
 * Loading the undici package installs its own Agent as the dispatcher of the global fetch when the
 * process has none yet. Touching a fetch global backed by Node's bundled undici (Response; fetch
 * itself loads lazily on first call) makes Node install its own Agent first, so importing meshfetch
 * leaves the platform fetch as it was. Must be imported before 'undici'.
 */
void globalThis.Response;

// What the three demo services share: a mesh that takes its policy from the control plane
// (MESHFETCH_CONTROL_PLANE) and its certificate from MESHFETCH_TLS_CERT/KEY/CA; an mTLS server on a
// free loopback port from mesh.createServer() (it requires a client certificate from the mesh CA,
// enforces policy's `allow` list and passes the caller's deadline on); GET /_stats with what the mesh
// sees; a clean stop on SIGTERM or Ctrl-C.
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMesh } from 'meshfetch';
import type { Mesh, MeshIncomingMessage } from 'meshfetch';

export type Handler = (req: MeshIncomingMessage, res: ServerResponse) => Promise<void> | void;

export async function serve(service: string, handler: (mesh: Mesh) => Handler): Promise<void> {
  // A 2 s stats window (the default is a minute) so that the demo's table follows what happens.
  const mesh = createMesh({ service, statsWindow: 2_000 });
  const handle = handler(mesh);
  const server = mesh.createServer(async (req, res) => {
    if (req.url === '/_stats') return void res.end(JSON.stringify(mesh.stats()));
    try {
      await handle(req, res);
    } catch (err) {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: (err as { code?: string }).code ?? String(err) }));
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ service, url: `https://127.0.0.1:${port}` })}\n`);

  const stop = (): void => {
    server.close();
    server.closeAllConnections();
    void mesh.close();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** The request body as JSON (these services only exchange small JSON documents). */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
}

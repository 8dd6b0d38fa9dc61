// What the three demo services share: a node:http server on a free loopback port that passes the
// caller's deadline on (withIncomingDeadline), a mesh that takes its policy from the control plane
// (MESHFETCH_CONTROL_PLANE), GET /_stats with what that mesh sees, and a clean stop on SIGTERM or
// Ctrl-C.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMesh, withIncomingDeadline } from 'meshfetch';
import type { Mesh } from 'meshfetch';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export async function serve(service: string, handler: (mesh: Mesh) => Handler): Promise<void> {
  // A 2 s stats window (the default is a minute) so that the demo's table follows what happens.
  const mesh = createMesh({ service, statsWindow: 2_000 });
  const handle = handler(mesh);
  const server = createServer(
    withIncomingDeadline(async (req, res) => {
      if (req.url === '/_stats') return void res.end(JSON.stringify(mesh.stats()));
      try {
        await handle(req, res);
      } catch (err) {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: (err as { code?: string }).code ?? String(err) }));
      }
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ service, url: `http://127.0.0.1:${port}` })}\n`);

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

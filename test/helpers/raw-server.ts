import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

export interface RawServer {
  readonly origin: string;
  /** Every request head received, as text. */
  readonly heads: string[];
  close(): Promise<void>;
}

/**
 * A TCP server on 127.0.0.1 that answers each request head with `answer` written in one piece, in
 * the same packet, whatever it is: for upstreams that send bytes an HTTP parser must reject.
 */
export async function startRawServer(answer: string | ((head: string) => string)): Promise<RawServer> {
  const heads: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // the client resets the connection it cannot parse
    let pending = '';
    socket.on('data', (data: Buffer) => {
      pending += data.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end !== -1; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        heads.push(head);
        socket.write(typeof answer === 'string' ? answer : answer(head));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    heads,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

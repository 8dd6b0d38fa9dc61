/**
 * The baseline for the control plane bench: the least a server can do to push a revision, a bare
 * node:http SSE broadcaster. GET /watch holds a stream; POST /publish?revision=R writes one event
 * with the request body to every stream; GET /rss answers its resident set size. No validation, no
 * file, no hashing: what the control plane adds over this is what the ratio shows.
 * Prints its port on stdout; exits when its stdin ends.
 */
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const streams = new Set<ServerResponse>();
const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/watch') {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(':\n\n');
    streams.add(res);
    res.on('close', () => streams.delete(res));
  } else if (url.pathname === '/publish') {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const frame = Buffer.from(`event: policy\nid: ${url.searchParams.get('revision')}\ndata: ${JSON.stringify(JSON.parse(body))}\n\n`);
    for (const stream of streams) stream.write(frame);
    res.end();
  } else if (url.pathname === '/rss') {
    res.end(String(process.memoryUsage.rss()));
  } else {
    res.writeHead(404).end();
  }
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.stdin.resume();
process.stdin.on('end', () => {
  for (const stream of streams) stream.destroy();
  server.close();
});

import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMesh, defineService, HttpStatusError, shape } from 'meshfetch';

// A stand-in for the payments service on a free loopback port. It fails the first
// request with a 503 to show a retry.
let served = 0;
const payments = createServer((req, res) => {
  served += 1;
  res.setHeader('content-type', 'application/json');
  if (served === 1) res.writeHead(503).end('{"error":"warming up"}');
  else if (req.url === '/charges/missing') res.writeHead(404).end('{"error":"no such charge"}');
  else res.end(JSON.stringify({ id: req.url?.split('/').pop(), amount: 5 }));
});
payments.listen(0, '127.0.0.1');
await once(payments, 'listening');
const { port } = payments.address() as AddressInfo;

// The policy usually comes from MESHFETCH_POLICY or the control plane; inline here.
const mesh = createMesh({
  service: 'checkout',
  policy: {
    apiVersion: 'meshfetch/v1',
    defaults: { timeout: '2s', retry: { backoff: { base: '5ms', max: '50ms' } } },
    services: { payments: { endpoints: [`http://127.0.0.1:${port}`] } },
  },
});
mesh.on('retry', (e) => console.log(`retrying ${e.service} (attempt ${e.attempt}) after ${String(e.reason)}`));

interface Charge {
  id: string;
  amount: number;
}
const Payments = defineService({
  routes: {
    getCharge: { method: 'GET', path: '/charges/:id', response: shape<Charge>() },
  },
});
const client = mesh.client('payments', Payments);

const charge = await client.getCharge({ params: { id: 'ch_1' } });
console.log(`charge ${charge.id}: ${charge.amount}`);

const res = await mesh.fetch('http://payments/charges/ch_2'); // a drop-in for fetch
console.log(`fetch: ${res.status}`, await res.json());

try {
  await client.getCharge({ params: { id: 'missing' } });
} catch (err) {
  if (err instanceof HttpStatusError) console.log(`error: ${err.code} ${err.status}`, err.body);
}

await mesh.close();
payments.close();

// Two hops: the edge calls orders with a 200 ms deadline; orders calls inventory, which is stuck.
// orders' own call inherits what is left of the edge's deadline, so it gives up when the edge does
// instead of waiting out its own 10 s timeout.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMesh, withIncomingDeadline, DEADLINE_HEADER } from 'meshfetch';
import type { MeshError } from 'meshfetch';

async function listen(server: ReturnType<typeof createServer>): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

// inventory never answers, and reports when its caller hangs up.
const inventory = createServer((req) => {
  const left = Number(req.headers[DEADLINE_HEADER]);
  console.log(`inventory: asked to answer within ${left <= 200 ? '200 ms or less' : `${left} ms`}`);
  req.socket.once('close', () => console.log('inventory: the caller hung up'));
});
const inventoryUrl = await listen(inventory);

// orders calls inventory through its own mesh, inside withIncomingDeadline.
const ordersMesh = createMesh({
  service: 'orders',
  policy: { apiVersion: 'meshfetch/v1', services: { inventory: { endpoints: [inventoryUrl] } } },
});
const orders = createServer(
  withIncomingDeadline(async (_req, res) => {
    try {
      res.end(JSON.stringify(await ordersMesh.client('inventory').get('/stock/42')));
    } catch (err) {
      console.log(`orders: inventory call ended with ${(err as MeshError).code}`);
      res.writeHead(504).end();
    }
  }),
);
const ordersUrl = await listen(orders);

// The edge gives the whole call 200 ms.
const edge = createMesh({
  service: 'edge',
  policy: { apiVersion: 'meshfetch/v1', services: { orders: { endpoints: [ordersUrl], timeout: '200ms' } } },
});
try {
  await edge.client('orders').get('/orders/7');
} catch (err) {
  console.log(`edge: ${(err as MeshError).code}`);
}

await edge.close();
await ordersMesh.close();
orders.close();
inventory.close();

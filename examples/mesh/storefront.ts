// storefront: the edge. GET /checkout places an order through orders.
import { serve } from './service.ts';

await serve('storefront', (mesh) => {
  const orders = mesh.client('orders');
  return async (_req, res) => {
    const placed = await orders.post('/orders', { json: { amount: 42 }, headers: { 'idempotency-key': crypto.randomUUID() } });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(placed));
  };
});

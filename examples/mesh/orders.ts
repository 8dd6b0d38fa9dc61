// orders: places an order and charges it through payments. The charge carries an Idempotency-Key,
// so the mesh may retry it; policy (from the control plane) says how.
import { readJson, serve } from './service.ts';

let placed = 0;

await serve('orders', (mesh) => {
  const payments = mesh.client('payments');
  return async (req, res) => {
    const { amount } = await readJson(req);
    const order = `${process.pid}-${++placed}`;
    const charge = await payments.post('/charges', { json: { order, amount }, headers: { 'idempotency-key': order } });
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ order, charge }));
  };
});

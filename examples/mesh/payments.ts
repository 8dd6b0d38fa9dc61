// payments: charges a card. To show what the mesh does with a bad upstream, it fails and stalls a
// share of its answers; the demo turns those shares up and down with PUT /_faults.
import { setTimeout as delay } from 'node:timers/promises';
import { readJson, serve } from './service.ts';

let faults = { failShare: 0, slowShare: 0, slowMs: 0 };

await serve('payments', () => async (req, res) => {
  if (req.method === 'PUT' && req.url === '/_faults') {
    faults = { ...faults, ...(await readJson(req)) };
    return void res.end();
  }
  const charge = await readJson(req);
  if (Math.random() < faults.slowShare) await delay(faults.slowMs);
  if (Math.random() < faults.failShare) return void res.writeHead(503).end('{"error":"card network unavailable"}');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ id: `ch_${charge.order}`, amount: charge.amount, status: 'captured' }));
});

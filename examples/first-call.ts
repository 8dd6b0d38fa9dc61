import { createMesh, isMeshError } from 'meshfetch';

const payments = process.env.PAYMENTS_URL ?? 'http://127.0.0.1:8080';
const mesh = createMesh({
  service: 'checkout',
  policy: { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [payments], timeout: '2s', retry: { attempts: 3 } } } },
});
mesh.on('retry', (e) => console.log(`retrying ${e.service} (attempt ${e.attempt}) after ${String(e.reason)}`));
try {
  const charge = await mesh.client('payments').get<{ id: string; amount: number }>('/charges/ch_1');
  console.log(`charge ${charge.id}: ${charge.amount}`);
} catch (err) {
  if (!isMeshError(err)) throw err;
  console.log(`payments failed: ${err.code} (attempts: ${err.attempts})`); // MESHFETCH_TIMEOUT, _CONNECT, _HTTP_STATUS, …
}
await mesh.close();

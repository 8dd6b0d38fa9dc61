/**
 * Compile-time tests of createMesh() options and mesh.client() overloads (checked by `tsc -p
 * tsconfig.json`, never run by mocha). Each `// @ts-expect-error` must be an error.
 */
import { createMesh, defineService, shape } from '../../lib/index.ts';
import type { ServiceClient, UserLogger } from '../../lib/index.ts';

/** pino's LogFn, as pino's own types declare it (pino 9). */
interface PinoLogFn {
  <T extends object>(obj: T, msg?: string, ...args: unknown[]): void;
  (obj: unknown, msg?: string, ...args: unknown[]): void;
  (msg: string, ...args: unknown[]): void;
}
declare const pino: { level: string; debug: PinoLogFn; info: PinoLogFn; warn: PinoLogFn; error: PinoLogFn; fatal: PinoLogFn; trace: PinoLogFn };

createMesh({ logger: pino });
createMesh({ logger: console });
const loggers: UserLogger[] = [pino, console];
void loggers;
// @ts-expect-error a logger needs debug, info, warn and error
createMesh({ logger: { info: (message: string) => void message } });

const mesh = createMesh();
const Payments = defineService({ routes: { getCharge: { method: 'GET', path: '/charges/:id', response: shape<{ id: string }>() } } });

const plain: ServiceClient = mesh.client('payments');
const withDefaults: ServiceClient = mesh.client('payments', { headers: { authorization: 'Bearer t' }, timeout: 500 });
const typed = mesh.client('payments', Payments);
const typedWithDefaults = mesh.client('payments', Payments, { headers: new Headers({ 'user-agent': 'x' }) });
void typed.getCharge({ params: { id: '1' } });
void typedWithDefaults.getCharge({ params: { id: '1' } });
void plain;
void withDefaults;
// @ts-expect-error a defaults object has no typed routes
void mesh.client('payments', { headers: {} }).getCharge;
// @ts-expect-error unknown defaults keys are refused
mesh.client('payments', { header: {} });
// @ts-expect-error defaults come after the contract, not instead of it
mesh.client('payments', { headers: {} }, Payments);

// Listeners can be removed with a signal; the mesh is async-disposable.
mesh.on('retry', () => {}, { signal: AbortSignal.timeout(10) });
async function scoped(): Promise<void> {
  await using scopedMesh = createMesh();
  void scopedMesh;
}
void scoped;

/**
 * Compile-time tests of the typed contract (checked by `tsc -p tsconfig.json`, never run by mocha).
 * Each `// @ts-expect-error` must be an error, and every other line must type-check: if inference of
 * params, body, query or response types regresses, tsc fails on this file.
 */
import { createMesh, defineService, shape } from '../../lib/index.ts';
import type { PathParamNames, RouteArgs, RouteResponse, ServiceClient } from '../../lib/index.ts';

/** Compiles only when X and Y are the same type. */
type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
function assertType<T extends true>(_proof?: T): void {}

interface Charge {
  id: string;
  amount: number;
}

const Payments = defineService({
  routes: {
    getCharge: { method: 'GET', path: '/charges/:id', response: shape<Charge>() },
    createCharge: { method: 'POST', path: '/charges', body: shape<{ amount: number; currency?: string }>(), response: shape<Charge>() },
    listRefunds: { method: 'GET', path: '/charges/:chargeId/refunds/:refundId', query: shape<{ limit: number }>() },
    health: { method: 'GET', path: '/health' },
    decoded: { method: 'GET', path: '/decoded', response: (value: unknown) => String(value).length },
  },
});

// Path parameter names are read from the path.
assertType<Equal<PathParamNames<'/charges/:id'>, 'id'>>();
assertType<Equal<PathParamNames<'/a/:x/b/:y'>, 'x' | 'y'>>();
assertType<Equal<PathParamNames<'/health'>, never>>();

// The route keeps its literal method and path after defineService.
assertType<Equal<typeof Payments.routes.getCharge.method, 'GET'>>();
assertType<Equal<typeof Payments.routes.getCharge.path, '/charges/:id'>>();

// Arguments and responses are inferred per route.
type GetChargeArgs = RouteArgs<typeof Payments.routes.getCharge>;
assertType<Equal<GetChargeArgs['params'], Record<'id', string | number>>>();
type CreateChargeArgs = RouteArgs<typeof Payments.routes.createCharge>;
assertType<Equal<CreateChargeArgs['body'], { amount: number; currency?: string }>>();
type ListRefundsArgs = RouteArgs<typeof Payments.routes.listRefunds>;
assertType<Equal<ListRefundsArgs['query'], { limit: number } | undefined>>();
assertType<Equal<RouteResponse<typeof Payments.routes.getCharge>, Charge>>();
assertType<Equal<RouteResponse<typeof Payments.routes.health>, unknown>>();
assertType<Equal<RouteResponse<typeof Payments.routes.decoded>, number>>();

export async function typedCalls(): Promise<void> {
  const mesh = createMesh();
  const payments = mesh.client('payments', Payments);

  const charge = await payments.getCharge({ params: { id: 'ch_1' } });
  assertType<Equal<typeof charge, Charge>>();
  await payments.getCharge({ params: { id: 42 }, headers: { 'x-a': '1' }, timeout: 500, signal: AbortSignal.timeout(1_000) });

  const created = await payments.createCharge({ body: { amount: 5 }, headers: { 'idempotency-key': 'k1' } });
  assertType<Equal<typeof created, Charge>>();

  const refunds = await payments.listRefunds({ params: { chargeId: 'c', refundId: 1 }, query: { limit: 10 } });
  assertType<Equal<typeof refunds, unknown>>();

  // A route with neither path params nor a body can be called without arguments.
  await payments.health();
  const length = await payments.decoded();
  assertType<Equal<typeof length, number>>();

  // The typed client is still a ServiceClient.
  const untyped: ServiceClient = payments;
  const body = await untyped.get<{ ok: boolean }>('/x');
  assertType<Equal<typeof body, { ok: boolean }>>();
  const res = await payments.fetch('/x');
  assertType<Equal<typeof res, Response>>();

  // @ts-expect-error a route with a path param needs its params
  await payments.getCharge();
  // @ts-expect-error the params object must name every path param
  await payments.getCharge({ params: {} });
  // @ts-expect-error one of two path params is missing
  await payments.listRefunds({ params: { chargeId: 'c' } });
  // @ts-expect-error a path param is a string or a number
  await payments.getCharge({ params: { id: true } });

  // @ts-expect-error the body has the route's body type
  await payments.createCharge({ body: { amount: '5' } });
  // @ts-expect-error a route with a body needs it
  await payments.createCharge();
  // @ts-expect-error a route without a declared body takes none
  await payments.getCharge({ params: { id: '1' }, body: { amount: 1 } });

  // @ts-expect-error the query has the route's query type
  await payments.listRefunds({ params: { chargeId: 'c', refundId: 1 }, query: { limit: 'ten' } });

  // @ts-expect-error a route the contract does not declare
  await payments.deleteCharge({ params: { id: '1' } });

  await mesh.close();
}

// @ts-expect-error defineService only takes the known HTTP methods
defineService({ routes: { bad: { method: 'FETCH', path: '/x' } } });

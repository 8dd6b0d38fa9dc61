// The demo's shared policy: one document for the three services, served by the control plane.
import type { Duration, PolicyDocument } from 'meshfetch';

export function demoPolicy(endpoints: Record<string, string>, payments: { perTryTimeout: Duration }): PolicyDocument {
  return {
    apiVersion: 'meshfetch/v1',
    defaults: {
      timeout: '2s',
      retry: { attempts: 3, backoff: { base: '10ms', max: '100ms' } },
      // A short window, so that the breaker opens and closes within the demo.
      circuitBreaker: { errorThresholdPercentage: 50, volumeThreshold: 10, window: '3s', resetTimeout: '1s' },
    },
    // mTLS: each endpoint must present the certificate of the identity named here.
    services: {
      orders: { endpoints: [endpoints.orders!], identity: 'spiffe://meshfetch.local/orders' },
      payments: {
        endpoints: [endpoints.payments!],
        identity: 'spiffe://meshfetch.local/payments',
        allow: ['orders', 'loadgen'], // who may call payments (loadgen: the demo, which sets its faults)
        perTryTimeout: payments.perTryTimeout,
      },
    },
  };
}

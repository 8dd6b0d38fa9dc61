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
    services: {
      orders: { endpoints: [endpoints.orders!] },
      payments: { endpoints: [endpoints.payments!], perTryTimeout: payments.perTryTimeout },
    },
  };
}

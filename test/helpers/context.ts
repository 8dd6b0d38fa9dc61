import { BUILT_IN_POLICY } from '../../lib/policy/compile.ts';
import { DEFAULT_POLICY } from '../../lib/policy/defaults.ts';
import type { CallContext } from '../../lib/pipeline/types.ts';
import type { CallPolicy } from '../../lib/policy/types.ts';

/** A call context as the pipeline would hand it to a layer or a transport. */
export function testContext(overrides: Omit<Partial<CallContext>, 'policy'> & { policy?: Partial<CallPolicy> } = {}): CallContext {
  const { policy, ...rest } = overrides;
  return {
    service: 'test-service',
    route: undefined,
    signal: undefined,
    deadline: Infinity,
    attempt: 1,
    endpoints: [],
    policyInForce: BUILT_IN_POLICY,
    ...rest,
    policy: { ...DEFAULT_POLICY, ...policy },
  };
}

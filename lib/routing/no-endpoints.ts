import { closest } from '../did-you-mean.ts';
import { ErrorCode, MeshError } from '../errors.ts';
import type { CallContext } from '../pipeline/types.ts';
import { BUILT_IN_POLICY } from '../policy/compile.ts';

/** At most this many service names are listed; a policy may name hundreds. */
const LISTED = 20;

/** What the policy in force knows, so that a call to a service it does not know can say what to fix. */
function whatThePolicyKnows(ctx: CallContext): string {
  const policy = ctx.policyInForce;
  if (policy === BUILT_IN_POLICY) {
    return (
      'only the built-in defaults are in force, which name no services ' +
      '(no policy came from MESHFETCH_POLICY, MESHFETCH_CONTROL_PLANE or createMesh({ policy }))'
    );
  }
  const names = [...policy.services.keys()];
  if (names.length === 0) return 'the policy in force names no services';
  const near = closest(ctx.service, names);
  const listed = names.slice(0, LISTED).join(', ') + (names.length > LISTED ? `, and ${names.length - LISTED} more` : '');
  return `the policy in force has no service "${ctx.service}"${near ? ` (did you mean "${near}"?)` : ''}; it knows ${listed}`;
}

/**
 * The MESHFETCH_CONFIG error of a call whose service has nowhere to go: for a service the policy
 * names, which key to set; for one it does not, which services it knows, or that only the built-in
 * defaults are in force.
 */
export function noEndpointsError(ctx: CallContext): MeshError {
  const known = ctx.policyInForce.services.has(ctx.service);
  const fix = known
    ? `set services.${ctx.service}.endpoints (or baseUrl) in the policy`
    : whatThePolicyKnows(ctx);
  return new MeshError(ErrorCode.Config, `no endpoints for service "${ctx.service}": ${fix}`, {
    service: ctx.service,
    route: ctx.route,
    attempts: ctx.attempt,
  });
}

import { closest } from '../did-you-mean.ts';

/**
 * Every MESHFETCH_* variable meshfetch reads (docs/configuration.md). A module that reads a new one
 * adds it here, so that it is not reported as unknown. MESHFETCH_STORE is read by the control-plane
 * command.
 */
export const KNOWN_VARIABLES: readonly string[] = [
  'MESHFETCH_SERVICE',
  'MESHFETCH_CONTROL_PLANE',
  'MESHFETCH_POLICY',
  'MESHFETCH_TLS_CERT',
  'MESHFETCH_TLS_KEY',
  'MESHFETCH_TLS_CA',
  'MESHFETCH_CACHE_DIR',
  'MESHFETCH_ADMIN_TOKEN',
  'MESHFETCH_LOG_LEVEL',
  'MESHFETCH_REPORT_INTERVAL',
  'MESHFETCH_STORE',
];

/** Policy keys someone might try to set from the environment (MESHFETCH_TIMEOUT, MESHFETCH_PER_TRY_TIMEOUT). */
const POLICY_KEYS = ['timeout', 'perTryTimeout', 'connectTimeout', 'bodyTimeout', 'retry', 'hedge', 'circuitBreaker', 'concurrency', 'rateLimit', 'tls'];

const PREFIX = 'MESHFETCH_';

/** Variables already reported in this process: each unknown name is reported once. */
const reported = new Set<string>();

/** What to say about one unknown variable: the closest known variable, or where such a setting lives. */
export function describeUnknownVariable(name: string): string {
  const suffix = (variable: string): string => variable.slice(PREFIX.length);
  const asKey = suffix(name).replace(/_/g, '').toLowerCase();
  const policyKey = POLICY_KEYS.find((key) => key.toLowerCase() === asKey);
  // Compared without the common prefix, which would make every name look close to every other.
  const near = closest(suffix(name), KNOWN_VARIABLES.map(suffix));
  const hint = policyKey
    ? `${policyKey} is a policy key, set in the policy document (defaults.${policyKey}, or per service), not by a variable`
    : near
      ? `did you mean ${PREFIX}${near}?`
      : `meshfetch reads ${KNOWN_VARIABLES.join(', ')}`;
  return `${name} is not a meshfetch variable and is ignored; ${hint}`;
}

/** Unknown MESHFETCH_* variables in `env` not reported before in this process, each with what to say. */
export function unreportedUnknownVariables(env: Readonly<Record<string, string | undefined>>): string[] {
  const messages: string[] = [];
  for (const name in env) {
    if (!name.startsWith(PREFIX) || KNOWN_VARIABLES.includes(name) || reported.has(name)) continue;
    reported.add(name);
    messages.push(describeUnknownVariable(name));
  }
  return messages;
}

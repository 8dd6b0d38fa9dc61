/**
 * Exponential backoff with full jitter (as Envoy and Linkerd): a random wait between 0 and
 * min(max, base × 2^(retry-1)), where `retry` counts from 1 for the first retry.
 */
export function fullJitterBackoff(retry: number, base: number, max: number, random: () => number = Math.random): number {
  const ceiling = Math.min(max, base * 2 ** (retry - 1));
  return Math.floor(random() * ceiling);
}

import { trace } from '@opentelemetry/api';
import type { Attributes } from '@opentelemetry/api';
import type { MeshEvents } from '../events.ts';
import { ATTR, errorType } from './attributes.ts';

/** A retry's or give-up's reason: the status it answered, or the failure's error.type. */
function reasonType(reason: unknown): string {
  return typeof reason === 'number' ? String(reason) : errorType(reason);
}

function onCallSpan(name: string, attributes: Attributes): void {
  const span = trace.getActiveSpan();
  if (span?.isRecording()) span.addEvent(name, attributes);
}

/**
 * Adds the mesh's events to the span of the call they happen in. Listeners run synchronously where
 * the event is emitted: in the layers between the call span and the attempt spans (retry, hedge,
 * breaker, limits, balancer), where the active span is the call's.
 * Returns a function that removes the listeners.
 */
export function recordSpanEvents(events: MeshEvents): () => void {
  const disposers = [
    events.on('retry', (e) => onCallSpan('meshfetch.retry', { 'meshfetch.attempt': e.attempt, 'meshfetch.delay_ms': e.delay, [ATTR.errorType]: reasonType(e.reason) })),
    events.on('hedge', (e) => onCallSpan('meshfetch.hedge', { 'meshfetch.attempt': e.attempt, 'meshfetch.delay_ms': e.delay })),
    events.on('budgetExhausted', (e) => onCallSpan('meshfetch.retry_budget_exhausted', { 'meshfetch.attempt': e.attempt })),
    events.on('giveUp', (e) => onCallSpan('meshfetch.give_up', { [ATTR.giveUp]: e.why, [ATTR.attempts]: e.attempts, [ATTR.errorType]: reasonType(e.reason) })),
    events.on('circuit', (e) => onCallSpan('meshfetch.circuit', { [ATTR.circuitState]: e.state, 'meshfetch.circuit.previous': e.previous })),
    events.on('limited', (e) => onCallSpan('meshfetch.limited', { [ATTR.limit]: e.limit })),
    events.on('fault', (e) =>
      onCallSpan('meshfetch.fault_injected', { 'meshfetch.fault': e.kind, [ATTR.backend]: e.backend, ...(e.status === undefined ? {} : { [ATTR.status]: e.status }), ...(e.duration === undefined ? {} : { 'meshfetch.duration_ms': e.duration }) }),
    ),
    events.on('ejection', (e) => onCallSpan('meshfetch.ejection', { 'meshfetch.endpoint': e.endpoint, 'meshfetch.ejected': e.ejected, 'meshfetch.duration_ms': e.duration })),
  ];
  return () => {
    for (const dispose of disposers) dispose();
  };
}

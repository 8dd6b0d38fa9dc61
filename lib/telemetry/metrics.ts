import { createNoopMeter, metrics, ValueType } from '@opentelemetry/api';
import type { Attributes, BatchObservableCallback, Counter, Histogram, Meter, MeterProvider, ObservableGauge } from '@opentelemetry/api';
import type { AttemptEnded, CallEnded, CircuitState, MeshEvents } from '../events.ts';
import { ATTR, knownMethod, serverAddress } from './attributes.ts';
import { SCOPE } from './tracer.ts';

/** The HTTP semantic conventions' advice for http.client.request.duration, in seconds. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

const CIRCUIT_VALUE: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 };
/** Breakers are per destination, so few; the bound only guards against a misbehaving emitter. */
const MAX_CIRCUITS = 1_024;

/** The class of a histogram from the API's no-op meter: what every meter hands out while no SDK is registered. */
const NOOP_HISTOGRAM = createNoopMeter().createHistogram('meshfetch.probe').constructor;

interface Instruments {
  readonly provider: MeterProvider;
  /** False while no MeterProvider is registered: the per-call listeners then build no attributes. */
  readonly live: boolean;
  readonly meter: Meter;
  readonly attemptDuration: Histogram;
  readonly callDuration: Histogram;
  readonly retries: Counter;
  readonly hedges: Counter;
  readonly budgetExhausted: Counter;
  readonly giveUps: Counter;
  readonly limited: Counter;
  readonly ejections: Counter;
  readonly faults: Counter;
  readonly certificates: Counter;
  readonly circuitState: ObservableGauge;
  readonly certificateExpiry: ObservableGauge;
  readonly observe: BatchObservableCallback;
}

/**
 * OpenTelemetry metrics from the mesh's events, labelled with caller, service and route (never a
 * path). Instruments are made from whatever MeterProvider is registered, and made again if another
 * one is registered later (the metrics API has no proxy provider, unlike tracing).
 */
export class MeshMetrics {
  readonly #caller: string;
  readonly #disposers: (() => void)[];
  readonly #circuits = new Map<string, { attributes: Attributes; state: CircuitState }>();
  #certificateNotAfter: number | undefined;
  #instruments: Instruments | undefined;

  constructor(events: MeshEvents, caller: string) {
    this.#caller = caller;
    const labels = (service: string, route: string | undefined): Attributes => {
      const attributes: Attributes = { [ATTR.caller]: caller, [ATTR.service]: service };
      if (route !== undefined) attributes[ATTR.route] = route;
      return attributes;
    };
    this.#disposers = [
      events.on('attempt', (e) => {
        const instruments = this.#get();
        if (instruments.live) instruments.attemptDuration.record(e.duration / 1_000, this.#attemptAttributes(e));
      }),
      events.on('call', (e) => {
        const instruments = this.#get();
        if (instruments.live) instruments.callDuration.record(e.duration / 1_000, this.#callAttributes(e));
      }),
      events.on('retry', (e) => this.#get().retries.add(1, labels(e.service, e.route))),
      events.on('hedge', (e) => this.#get().hedges.add(1, labels(e.service, e.route))),
      events.on('budgetExhausted', (e) => this.#get().budgetExhausted.add(1, labels(e.service, e.route))),
      events.on('giveUp', (e) => this.#get().giveUps.add(1, { ...labels(e.service, e.route), [ATTR.giveUp]: e.why })),
      events.on('limited', (e) => this.#get().limited.add(1, { ...labels(e.service, e.route), [ATTR.limit]: e.limit })),
      events.on('fault', (e) => this.#get().faults.add(1, { ...labels(e.service, e.route), 'meshfetch.fault': e.kind })),
      events.on('ejection', (e) => {
        if (e.ejected) this.#get().ejections.add(1, labels(e.service, undefined));
      }),
      events.on('circuit', (e) => {
        const key = `${e.service}\u0000${e.route ?? ''}`;
        if (this.#circuits.size < MAX_CIRCUITS || this.#circuits.has(key)) this.#circuits.set(key, { attributes: labels(e.service, e.route), state: e.state });
        this.#get();
      }),
      events.on('certificate', (e) => {
        if (e.notAfter !== undefined) this.#certificateNotAfter = e.notAfter;
        this.#get().certificates.add(1, { [ATTR.caller]: caller, [ATTR.certificateState]: e.state });
      }),
    ];
  }

  #attemptAttributes(e: AttemptEnded): Attributes {
    const { address, port } = serverAddress(e.origin);
    const attributes: Attributes = {
      [ATTR.method]: knownMethod(e.method),
      [ATTR.serverAddress]: address,
      [ATTR.serverPort]: port,
      [ATTR.caller]: this.#caller,
      [ATTR.service]: e.service,
    };
    // Only when a split sent the attempt elsewhere: backends come from the policy, so the label stays bounded.
    if (e.backend !== e.service) attributes[ATTR.backend] = e.backend;
    return this.#outcome(attributes, e);
  }

  #callAttributes(e: CallEnded): Attributes {
    return this.#outcome({ [ATTR.method]: knownMethod(e.method), [ATTR.caller]: this.#caller, [ATTR.service]: e.service }, e);
  }

  #outcome(attributes: Attributes, e: CallEnded | AttemptEnded): Attributes {
    if (e.route !== undefined) attributes[ATTR.route] = e.route;
    if (e.status !== undefined) attributes[ATTR.status] = e.status;
    if (e.errorType !== undefined) attributes[ATTR.errorType] = e.errorType;
    return attributes;
  }

  #get(): Instruments {
    const provider = metrics.getMeterProvider();
    if (this.#instruments?.provider === provider) return this.#instruments;
    this.#release();
    const meter = provider.getMeter(SCOPE.name, SCOPE.version);
    const duration = (name: string, description: string): Histogram =>
      meter.createHistogram(name, { unit: 's', description, advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
    const counter = (name: string, description: string): Counter => meter.createCounter(name, { description, valueType: ValueType.INT });
    const circuitState = meter.createObservableGauge('meshfetch.client.circuit.state', {
      description: 'Circuit breaker state per destination: 0 closed, 1 half-open, 2 open',
      valueType: ValueType.INT,
    });
    const certificateExpiry = meter.createObservableGauge('meshfetch.tls.certificate.time_to_expiry', {
      unit: 's',
      description: "Seconds until this mesh's certificate expires (negative once it has)",
    });
    const observe: BatchObservableCallback = (result) => {
      for (const { attributes, state } of this.#circuits.values()) result.observe(circuitState, CIRCUIT_VALUE[state], attributes);
      if (this.#certificateNotAfter !== undefined) {
        result.observe(certificateExpiry, (this.#certificateNotAfter - Date.now()) / 1_000, { [ATTR.caller]: this.#caller });
      }
    };
    meter.addBatchObservableCallback(observe, [circuitState, certificateExpiry]);
    const attemptDuration = duration('http.client.request.duration', 'Duration of each HTTP attempt, to the end of its response body');
    this.#instruments = {
      provider,
      live: attemptDuration.constructor !== NOOP_HISTOGRAM,
      meter,
      attemptDuration,
      callDuration: duration('meshfetch.client.call.duration', 'Duration of each logical call as the caller saw it, retries included'),
      retries: counter('meshfetch.client.retries', 'Retries sent'),
      hedges: counter('meshfetch.client.hedges', 'Hedged copies sent'),
      budgetExhausted: counter('meshfetch.client.retry_budget.exhausted', 'Retries or hedges wanted but refused by the retry budget'),
      giveUps: counter('meshfetch.client.give_ups', 'Calls that ended with no further attempt, by reason'),
      limited: counter('meshfetch.client.limited', 'Calls refused by a concurrency or rate limit'),
      ejections: counter('meshfetch.client.endpoint.ejections', 'Endpoints ejected from load balancing'),
      faults: counter('meshfetch.client.faults_injected', 'Aborts and delays injected by the policy (fault), by kind'),
      certificates: counter('meshfetch.tls.certificate.events', 'Certificate loads, rotations, refusals and expiry warnings'),
      circuitState,
      certificateExpiry,
      observe,
    };
    return this.#instruments;
  }

  /** Unhooks the observable callback from the provider the instruments came from. */
  #release(): void {
    if (!this.#instruments) return;
    const { meter, observe, circuitState, certificateExpiry } = this.#instruments;
    meter.removeBatchObservableCallback(observe, [circuitState, certificateExpiry]);
    this.#instruments = undefined;
  }

  /** Stops listening and unhooks the gauges (mesh.close()). */
  close(): void {
    for (const dispose of this.#disposers) dispose();
    this.#release();
  }
}

export { createMesh, DEFAULT_CLOSE_GRACE_MS, Mesh } from './mesh.ts';
export type { CloseOptions, MeshOptions } from './mesh.ts';
export type { EnvironmentOptions, MeshSettings } from './config/options.ts';
export { ServiceClient } from './client/service-client.ts';
export type { MeshRequestInit } from './client/service-client.ts';
export type { JsonCallOptions } from './client/json-call.ts';
export type { CallOptions } from './client/call.ts';
export type { ClientDefaults } from './client/client-defaults.ts';
export type { QueryParams, QueryValue } from './client/query.ts';
export { defineService, shape } from './client/contract.ts';
export type { Decoder, HttpMethod, PathParamNames, RouteArgs, RouteSpec, RouteResponse, ServiceContract, TypedRoutes } from './client/contract.ts';
export { ErrorCode, HttpStatusError, MeshError, isMeshError } from './errors.ts';
export type { HttpStatusErrorOptions, MeshErrorOptions } from './errors.ts';
export { compose } from './pipeline/compose.ts';
export { DEFAULT_STACK } from './stack.ts';
export type { Layer, LayerDeps, MiddlewareSpec } from './pipeline/layers.ts';
export type { CallContext, Handler, HeaderRecord, MeshRequest, MeshResponse, Middleware, RequestBody, StreamBody } from './pipeline/types.ts';
export { compilePolicy } from './policy/compile.ts';
export { parseDuration } from './policy/duration.ts';
export { DEFAULT_POLICY } from './policy/defaults.ts';
export type {
  CallPolicy,
  CircuitBreakerPolicy,
  Duration,
  LoadBalancerPolicy,
  LoadBalancerStrategy,
  OutlierDetectionPolicy,
  PolicyDocument,
  PolicySettings,
  RetryCondition,
  RetryPolicy,
  RouteDocument,
  ServiceDocument,
  TlsMode,
} from './policy/types.ts';
export { undiciTransport } from './transport/undici.ts';
export type { UndiciTransportOptions } from './transport/undici.ts';
export { DEFAULT_CONNECTIONS_PER_ORIGIN } from './transport/types.ts';
export type { OriginTls, Transport, TransportFactory, TransportSettings, TransportTls } from './transport/types.ts';
export { callerIdentity } from './tls/server.ts';
export type { CallerIdentity, MeshIncomingMessage, MeshRequestHandler } from './tls/server.ts';
export type { CertificateStatus } from './tls/watcher.ts';
export type { LogLevel, UserLogger } from './log.ts';
export type { AttemptEnded, CallEnded, CertificateState, CircuitState, GiveUpReason, MeshEventListener, MeshEventMap, MeshEventName, Outcome, PolicySource, RequestEnded } from './events.ts';
export {
  ATTEMPT_HEADER,
  DEADLINE_HEADER,
  deadlineFromRequest,
  runWithDeadline,
  withIncomingDeadline,
} from './resilience/deadline-context.ts';
export type { IncomingCall } from './resilience/deadline-context.ts';
export type { MeshStatsSnapshot, ServiceStats } from './telemetry/stats.ts';
export { startControlPlane } from './control-plane/server.ts';
export type { ControlPlane, ControlPlaneOptions } from './control-plane/server.ts';
export type { RevisionStore, PutOptions } from './control-plane/store.ts';
export { RevisionConflict, StoreUnavailable } from './control-plane/store.ts';
export type { ClientDirectory, ClientRecord } from './control-plane/clients.ts';
export { buildRevision } from './control-plane/revision.ts';
export type { Revision, RevisionSource, DocumentValidator, Publication } from './control-plane/revision.ts';
export type { ControlPlaneTiming } from './control-plane-client/remote-policy.ts';
export { OTHER, UNNAMED_ROUTE } from './telemetry/stats.ts';
export { mergeFigures } from './telemetry/figures.ts';
export type { GoldenFigures } from './telemetry/figures.ts';
export { DURATION_BUCKETS } from './telemetry/metrics.ts';

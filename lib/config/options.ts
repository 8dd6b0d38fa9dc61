import { existsSync, statSync } from 'node:fs';
import { configError } from '../errors.ts';
import type { LogLevel } from '../log.ts';
import { LOG_LEVELS } from '../log.ts';
import { MAX_TIMER_MS, parseDuration } from '../policy/duration.ts';
import type { TlsFiles } from '../tls/load.ts';
import { withoutUserinfo } from './secrets.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** Settings that may come from a MESHFETCH_* variable or from createMesh() options (options win). */
export interface EnvironmentOptions {
  /** This service's name (MESHFETCH_SERVICE, then OTEL_SERVICE_NAME). */
  service?: string;
  /** Control plane URL, or several replicas' URLs comma-separated (MESHFETCH_CONTROL_PLANE). */
  controlPlane?: string;
  /** Local policy file, YAML or JSON (MESHFETCH_POLICY). */
  policyFile?: string;
  /** PEM file paths (MESHFETCH_TLS_CERT, MESHFETCH_TLS_KEY, MESHFETCH_TLS_CA). */
  tls?: { certFile?: string; keyFile?: string; caFile?: string };
  /** Where the last-known-good policy is kept (MESHFETCH_CACHE_DIR). */
  cacheDir?: string;
  /** Token for control plane writes (MESHFETCH_ADMIN_TOKEN). Never logged. */
  adminToken?: string;
  /** debug, info, warn, error or silent (MESHFETCH_LOG_LEVEL). */
  logLevel?: LogLevel;
  /** How often figures are reported to the control plane: a duration ("10s") or "off" (MESHFETCH_REPORT_INTERVAL; default 10s). */
  reportInterval?: string;
}

export interface MeshSettings {
  readonly service: string;
  /** The first control plane URL (the only one, unless replicas are listed). */
  readonly controlPlane: URL | undefined;
  /** Every control plane replica given, in order; empty without a control plane. */
  readonly controlPlanes: readonly URL[];
  readonly policyFile: string | undefined;
  /** The PEM files configured (read, validated and watched by the mesh), each with where it was set. */
  readonly tls: TlsFiles;
  readonly cacheDir: string | undefined;
  readonly adminToken: string | undefined;
  readonly logLevel: LogLevel;
  /** Milliseconds between reports of figures to the control plane; undefined when reporting is off. */
  readonly reportInterval: number | undefined;
}

/**
 * The settings in force. The secret (the admin token) is a private field behind a getter:
 * util.inspect(mesh), console.log(mesh.settings) and JSON.stringify print every other setting and
 * never it. TLS settings are paths: the key is read by lib/tls and never kept here.
 */
class ResolvedSettings implements MeshSettings {
  readonly service: string;
  /** controlPlanes[0]: derived here, not given, and a plain field so that console.log shows the URL (a getter prints as [Getter]). */
  readonly controlPlane: URL | undefined;
  readonly controlPlanes: readonly URL[];
  readonly policyFile: string | undefined;
  readonly tls: TlsFiles;
  readonly cacheDir: string | undefined;
  readonly logLevel: LogLevel;
  readonly reportInterval: number | undefined;
  readonly #adminToken: string | undefined;

  constructor(settings: Omit<MeshSettings, 'controlPlane'>) {
    this.service = settings.service;
    this.controlPlane = settings.controlPlanes[0];
    this.controlPlanes = settings.controlPlanes;
    this.policyFile = settings.policyFile;
    this.tls = settings.tls;
    this.cacheDir = settings.cacheDir;
    this.logLevel = settings.logLevel;
    this.reportInterval = settings.reportInterval;
    this.#adminToken = settings.adminToken;
  }

  get adminToken(): string | undefined {
    return this.#adminToken;
  }
}

const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$/;

/** Names where a value came from, for error messages: the variable, or the createMesh option. */
function source(variable: string, option: string, fromOption: boolean): string {
  return fromOption ? `createMesh option ${option}` : variable;
}

function pick<T>(option: T | undefined, env: Env, variable: string, optionName: string): { value: string | undefined; where: string } {
  if (option !== undefined) return { value: String(option), where: source(variable, optionName, true) };
  const raw = env[variable];
  return { value: raw === undefined || raw.trim() === '' ? undefined : raw.trim(), where: variable };
}

/** One URL or several replicas' URLs, comma-separated; all http or all https. */
function parseControlPlanes(value: string, where: string): URL[] {
  // The value is quoted without userinfo: a password in it must not reach a log through the error.
  const quoted = JSON.stringify(withoutUserinfo(value));
  const urls = value.split(',').map((part) => part.trim()).filter((part) => part !== '').map((part) => {
    const url = URL.parse(part);
    if (!url || !/^https?:$/.test(url.protocol)) throw configError(`${where}=${quoted}: expected an http:// or https:// URL${value.includes(',') ? ' (or several, comma-separated)' : ''}`);
    if (url.username !== '' || url.password !== '') {
      throw configError(`${where}=${quoted}: credentials in the URL are not supported; the admin token is MESHFETCH_ADMIN_TOKEN`);
    }
    return url;
  });
  if (urls.length === 0) throw configError(`${where}=${quoted}: expected an http:// or https:// URL`);
  if (new Set(urls.map((url) => url.protocol)).size > 1) throw configError(`${where}=${quoted}: the replicas must all use http:// or all https://`);
  return urls;
}

/**
 * Reads MESHFETCH_* (and OTEL_SERVICE_NAME) from `env`, lets explicit options override them, and
 * validates each value. A bad value throws MESHFETCH_CONFIG naming the variable (or option) and value.
 */
export function resolveSettings(options: EnvironmentOptions, env: Env): MeshSettings {
  const service = pick(options.service, env, 'MESHFETCH_SERVICE', 'service');
  // An empty OTEL_SERVICE_NAME counts as unset, as OpenTelemetry treats empty variables.
  const otelName = env.OTEL_SERVICE_NAME?.trim() || undefined;
  const serviceName = service.value ?? otelName ?? 'unknown_service:node';
  if (!SERVICE_NAME.test(serviceName)) {
    throw configError(`${service.value !== undefined ? service.where : 'OTEL_SERVICE_NAME'}=${JSON.stringify(serviceName)}: a service name is letters, digits, ".", "_", ":" or "-"`);
  }

  const cp = pick(options.controlPlane, env, 'MESHFETCH_CONTROL_PLANE', 'controlPlane');
  const controlPlanes = cp.value === undefined ? [] : parseControlPlanes(cp.value, cp.where);

  const policy = pick(options.policyFile, env, 'MESHFETCH_POLICY', 'policyFile');
  if (policy.value !== undefined && !existsSync(policy.value)) {
    throw configError(`${policy.where}=${policy.value}: no such file`);
  }

  const cert = pick(options.tls?.certFile, env, 'MESHFETCH_TLS_CERT', 'tls.certFile');
  const key = pick(options.tls?.keyFile, env, 'MESHFETCH_TLS_KEY', 'tls.keyFile');
  const ca = pick(options.tls?.caFile, env, 'MESHFETCH_TLS_CA', 'tls.caFile');
  if ((cert.value === undefined) !== (key.value === undefined)) {
    const missing = cert.value === undefined ? cert.where : key.where;
    throw configError(`${missing}: must be set together with ${cert.value === undefined ? key.where : cert.where}`);
  }
  const tls: TlsFiles = {};
  if (cert.value !== undefined) tls.cert = { path: cert.value, where: cert.where };
  if (key.value !== undefined) tls.key = { path: key.value, where: key.where };
  if (ca.value !== undefined) tls.ca = { path: ca.value, where: ca.where };

  const cache = pick(options.cacheDir, env, 'MESHFETCH_CACHE_DIR', 'cacheDir');
  if (cache.value !== undefined && existsSync(cache.value) && !statSync(cache.value).isDirectory()) {
    throw configError(`${cache.where}=${cache.value}: exists and is not a directory`);
  }

  const token = pick(options.adminToken, env, 'MESHFETCH_ADMIN_TOKEN', 'adminToken');
  if (token.value !== undefined && token.value.length < 16) {
    throw configError(`${token.where}: must be at least 16 characters (value not shown)`);
  }

  const level = pick(options.logLevel, env, 'MESHFETCH_LOG_LEVEL', 'logLevel');
  const logLevel = (level.value?.toLowerCase() ?? 'warn') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw configError(`${level.where}=${JSON.stringify(level.value)}: expected one of ${LOG_LEVELS.join(', ')}`);
  }

  const report = pick(options.reportInterval, env, 'MESHFETCH_REPORT_INTERVAL', 'reportInterval');
  const reportInterval = report.value?.toLowerCase() === 'off' ? undefined : (parseDuration(report.value ?? '10s') ?? Number.NaN);
  if (reportInterval !== undefined && !(reportInterval >= 100 && reportInterval <= MAX_TIMER_MS)) {
    throw configError(`${report.where}=${JSON.stringify(report.value)}: expected a duration from 100ms (e.g. "10s") or "off"`);
  }

  return new ResolvedSettings({
    service: serviceName,
    controlPlanes,
    policyFile: policy.value,
    tls,
    cacheDir: cache.value,
    adminToken: token.value,
    logLevel,
    reportInterval,
  });
}

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option } from 'commander';
import type { Command } from 'commander';
import { configError } from '../errors.ts';
import { createCertificateAuthority, importCertificateAuthority, issueCertificate } from '../tls/issue.ts';
import type { CertificateAuthority } from '../tls/issue.ts';
import type { CommandModule } from './program.ts';

interface CertsOptions {
  out: string;
  trustDomain: string;
  days: string;
  caDays: string;
  dns: string[];
  ip: string[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const TRUST_DOMAIN = /^[a-z0-9.-]+$/;

function positiveDays(value: string, flag: string): number {
  const days = Number(value);
  if (!Number.isFinite(days) || days <= 0) throw configError(`${flag} ${JSON.stringify(value)}: expected a positive number of days`);
  return days;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Keys are secrets: readable by the owner only. */
function writeKey(path: string, pem: string): void {
  writeFileSync(path, pem, { mode: 0o600 });
}

/** The CA in `out` when there is one (so that new services join the same mesh), else a new one. */
async function authorityIn(out: string, days: number, log: (line: string) => void): Promise<CertificateAuthority> {
  const certPath = join(out, 'ca.crt');
  const keyPath = join(out, 'ca.key');
  if (existsSync(certPath) && existsSync(keyPath)) {
    log(`using the CA in ${certPath}`);
    return importCertificateAuthority(readFileSync(certPath, 'utf8'), readFileSync(keyPath, 'utf8'));
  }
  const ca = await createCertificateAuthority('meshfetch development CA', { days });
  writeFileSync(certPath, ca.cert);
  writeKey(keyPath, ca.key);
  log(`wrote ${certPath} (the mesh CA bundle: MESHFETCH_TLS_CA) and ${keyPath} (keep it private)`);
  return ca;
}

/**
 * `meshfetch certs [services...]`: a development CA and, per service, a certificate whose URI SAN is
 * its SPIFFE id (spiffe://<trust domain>/<service>), usable as server and client certificate.
 */
export const certsCommand: CommandModule = (program: Command) => {
  program
    .command('certs')
    .description('make a development CA and service certificates with SPIFFE URI SANs (no openssl needed)')
    .argument('[services...]', 'service names, one certificate each')
    .option('--out <dir>', 'directory to write ca.crt, ca.key, <service>.crt and <service>.key to', './certs')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'meshfetch.local')
    .option('--days <n>', 'validity of service certificates, in days', '30')
    .option('--ca-days <n>', 'validity of a new CA, in days', '365')
    .addOption(new Option('--dns <name>', 'extra DNS SAN for every service certificate (repeatable)').argParser(collect).default([]))
    .addOption(new Option('--ip <address>', 'extra IP SAN for every service certificate (repeatable)').argParser(collect).default([]))
    .action(async (services: string[], options: CertsOptions) => {
      const log = (line: string): void => void process.stdout.write(`${line}\n`);
      if (!TRUST_DOMAIN.test(options.trustDomain)) throw configError(`--trust-domain ${JSON.stringify(options.trustDomain)}: expected a lower-case DNS-like name`);
      for (const service of services) {
        if (!NAME.test(service)) throw configError(`service ${JSON.stringify(service)}: a service name is letters, digits, ".", "_" or "-"`);
      }
      const days = positiveDays(options.days, '--days');
      const caDays = positiveDays(options.caDays, '--ca-days');
      mkdirSync(options.out, { recursive: true });
      const ca = await authorityIn(options.out, caDays, log);
      for (const service of services) {
        const spiffeId = `spiffe://${options.trustDomain}/${service}`;
        const issued = await issueCertificate(ca, {
          spiffeId,
          dns: [service, 'localhost', ...options.dns],
          ips: ['127.0.0.1', '::1', ...options.ip],
          days,
        });
        writeFileSync(join(options.out, `${service}.crt`), issued.cert);
        writeKey(join(options.out, `${service}.key`), issued.key);
        log(`wrote ${join(options.out, `${service}.crt`)} and ${service}.key: ${spiffeId}, valid ${days} days`);
      }
    });
};

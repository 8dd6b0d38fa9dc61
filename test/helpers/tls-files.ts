import { X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertificateState, MeshEventMap } from '../../lib/events.ts';
import type { KeyPair } from './certs.ts';

/** A directory holding one service's cert.pem, key.pem and ca.pem, written the way rotation tools write. */
export class TlsDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'meshfetch-tls-'));
  readonly cert = join(this.dir, 'cert.pem');
  readonly key = join(this.dir, 'key.pem');
  readonly ca = join(this.dir, 'ca.pem');
  #n = 0;

  constructor(pair: KeyPair, ca: string) {
    this.write(pair, ca);
  }

  /** Writes each file to a temporary name and renames it over the old one (as editors and kubelets do). */
  write(pair: KeyPair | undefined, ca?: string): void {
    if (pair) {
      this.replace(this.key, pair.key);
      this.replace(this.cert, pair.cert);
    }
    if (ca !== undefined) this.replace(this.ca, ca);
  }

  replace(path: string, text: string): void {
    const tmp = join(this.dir, `.tmp-${this.#n++}`);
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  }

  /** Writes in place, as a slow writer does: what a reader sees mid-write. */
  overwrite(path: string, text: string): void {
    writeFileSync(path, text);
  }

  /** createMesh() options naming these files. */
  get options(): { tls: { certFile: string; keyFile: string; caFile: string } } {
    return { tls: { certFile: this.cert, keyFile: this.key, caFile: this.ca } };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function serialOf(pem: string): string {
  return new X509Certificate(pem).serialNumber;
}

/** Something with a typed `on` for certificate events: a Mesh. */
interface CertificateEvents {
  on(name: 'certificate', listener: (event: MeshEventMap['certificate']) => void): () => void;
}

/** The next certificate event in `state`. */
export function nextCertificateEvent(source: CertificateEvents, state: CertificateState): Promise<MeshEventMap['certificate']> {
  return new Promise((resolve) => {
    const off = source.on('certificate', (event) => {
      if (event.state !== state) return;
      off();
      resolve(event);
    });
  });
}

/**
 * Calls `call` from `concurrency` loops until stop() (bounded by `max` calls in all), counting
 * successes and keeping every failure.
 */
export function steadyLoad(call: () => Promise<void>, concurrency = 4, max = 200_000): { stop(): Promise<{ ok: number; failures: unknown[] }>; readonly ok: number } {
  let stopped = false;
  let started = 0;
  const result = { ok: 0, failures: [] as unknown[] };
  const loop = async (): Promise<void> => {
    while (!stopped && started < max) {
      started++;
      try {
        await call();
        result.ok++;
      } catch (err) {
        result.failures.push(err);
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    get ok() {
      return result.ok;
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return result;
    },
  };
}

import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { CertificateState, MeshEvents } from '../events.ts';
import type { Logger } from '../log.ts';
import { blamedFile, loadTlsMaterial, readPems, TLS_PARTS } from './load.ts';
import type { TlsFiles } from './load.ts';
import { samePem, TlsMaterial } from './material.ts';
import type { TlsPem } from './material.ts';

export type { TlsFile, TlsFiles } from './load.ts';

export interface CertificateStatus {
  readonly state: 'valid' | 'expiring' | 'expired';
  readonly subject: string | undefined;
  readonly notAfter: number | undefined;
  /** Seconds until notAfter (negative once expired); what a telemetry gauge reports. */
  readonly expiresInSeconds: number | undefined;
}

export interface WatcherOptions {
  readonly events: MeshEvents;
  readonly logger: Logger;
  /** How long the files must be quiet after a change before they are read (default 100 ms). */
  readonly settleMs?: number;
  /**
   * How often the files are read again whatever fs.watch said, and expiry is checked (default 10 s):
   * the safety net for a watch that missed a change (a replaced directory, a network file system).
   */
  readonly recheckMs?: number;
  /** The share of a certificate's lifetime left when 'expiring' is announced (default 0.3). */
  readonly warnAtRemaining?: number;
}


/**
 * This mesh's TLS material, kept current from its files. The directories holding the files are
 * watched (not the files: editors and kubelets replace a file by renaming another over it, which
 * ends a watch on the file), and every change is checked by content, so a directory event for some
 * other file costs one read of three small files. A new set that fails validation (unparseable, key
 * not matching, expired, not yet valid, cut off mid-write) is refused and logged once; the material
 * in force stays until a good set is written.
 */
export class CertificateWatcher {
  readonly #files: TlsFiles;
  readonly #options: WatcherOptions;
  readonly #listeners = new Set<(material: TlsMaterial) => void>();
  readonly #watchers: FSWatcher[] = [];
  readonly #recheck: NodeJS.Timeout;
  #current: TlsMaterial;
  #settle: NodeJS.Timeout | undefined;
  /** The texts last refused, so that a bad file is reported once, not on every recheck. */
  #refused: TlsPem | undefined;
  #unreadable: string | undefined;
  #expiry: CertificateStatus['state'] = 'valid';

  /** Reads and validates the files at once; bad material throws MESHFETCH_CONFIG naming the file. */
  constructor(files: TlsFiles, options: WatcherOptions) {
    this.#files = files;
    this.#options = options;
    this.#current = loadTlsMaterial(files);
    for (const dir of new Set(TLS_PARTS.flatMap((part) => (files[part] ? [dirname(files[part].path)] : [])))) {
      const watcher = watch(dir, { persistent: false }, () => this.#changed());
      watcher.on('error', (err) => this.#options.logger.warn('TLS directory watch failed; the periodic recheck still runs', { dir, error: err.message }));
      this.#watchers.push(watcher);
    }
    this.#recheck = setInterval(() => {
      this.reload();
      this.checkExpiry();
    }, options.recheckMs ?? 10_000).unref();
    this.#options.logger.info('TLS material loaded', this.#fields(this.#current));
    // After createMesh() returns, so that a listener added right away sees it.
    queueMicrotask(() => {
      this.#emit('loaded', this.#current, undefined);
      this.checkExpiry();
    });
  }

  get current(): TlsMaterial {
    return this.#current;
  }

  /**
   * The PEM texts in force at each read (getters over the current material), for a client that
   * reads them per connection, such as the control plane watch. Printing it shows no key.
   */
  livePems(): TlsPem {
    const watcher = this;
    return {
      get cert() {
        return watcher.current.cert;
      },
      get key() {
        return watcher.current.key;
      },
      get ca() {
        return watcher.current.ca;
      },
    };
  }

  /** Runs `listener` with the new material after each rotation; returns the unsubscriber. */
  onRotate(listener: (material: TlsMaterial) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  status(now = Date.now()): CertificateStatus {
    const { subject, notAfter } = this.#current;
    return { state: this.#stateAt(now), subject, notAfter, expiresInSeconds: notAfter === undefined ? undefined : Math.floor((notAfter - now) / 1000) };
  }

  /** Reads the files; installs them if they changed and are good, refuses them (logged) otherwise. */
  reload(now = Date.now()): void {
    let pem: TlsPem;
    try {
      pem = readPems(this.#files);
    } catch (err) {
      const reason = (err as Error).message;
      if (reason === this.#unreadable) return;
      this.#unreadable = reason;
      return this.#refuse(undefined, reason);
    }
    this.#unreadable = undefined;
    if (this.#current.sameAs(pem)) return;
    if (this.#refused && samePem(this.#refused, pem)) return;
    let material: TlsMaterial;
    try {
      material = new TlsMaterial(pem, now);
    } catch (err) {
      // Whatever went wrong, it must not escape: this runs from a timer, and the material in force stays.
      return this.#refuse(pem, `${blamedFile(this.#files, err).path}: ${(err as Error).message}`);
    }
    this.#refused = undefined;
    this.#current = material;
    this.#expiry = 'valid';
    this.#options.logger.info('TLS material rotated', this.#fields(material));
    this.#emit('rotated', material, undefined);
    for (const listener of this.#listeners) {
      try {
        listener(material);
      } catch (err) {
        this.#options.logger.error('a TLS rotation listener failed', { error: (err as Error).message });
      }
    }
    this.checkExpiry(now);
  }

  /** Announces (once per state) a certificate that is near the end of its lifetime, or past it. */
  checkExpiry(now = Date.now()): void {
    const state = this.#stateAt(now);
    if (state === this.#expiry) return;
    this.#expiry = state;
    if (state === 'valid') return;
    const notAfter = new Date(this.#current.notAfter!).toISOString();
    const reason = state === 'expired' ? `the certificate expired at ${notAfter}` : `the certificate expires at ${notAfter}`;
    this.#options.logger[state === 'expired' ? 'error' : 'warn'](`TLS ${reason}; write a renewed certificate and key`, this.#fields(this.#current));
    this.#emit(state, this.#current, reason);
  }

  close(): void {
    clearTimeout(this.#settle);
    clearInterval(this.#recheck);
    for (const watcher of this.#watchers) watcher.close();
    this.#listeners.clear();
  }

  #stateAt(now: number): CertificateStatus['state'] {
    const { notBefore, notAfter } = this.#current;
    if (notBefore === undefined || notAfter === undefined) return 'valid';
    if (now >= notAfter) return 'expired';
    const warnAt = notAfter - (notAfter - notBefore) * (this.#options.warnAtRemaining ?? 0.3);
    return now >= warnAt ? 'expiring' : 'valid';
  }

  /** A burst of directory events (a write, a rename) becomes one read once the files are quiet. */
  #changed(): void {
    clearTimeout(this.#settle);
    this.#settle = setTimeout(() => {
      this.#settle = undefined;
      this.reload();
    }, this.#options.settleMs ?? 100);
  }

  #refuse(pem: TlsPem | undefined, reason: string): void {
    if (pem) this.#refused = pem;
    this.#options.logger.error(`new TLS material refused, the current material stays in use: ${reason}`, this.#fields(this.#current));
    this.#emit('refused', this.#current, reason);
  }

  #emit(state: CertificateState, material: TlsMaterial, reason: string | undefined): void {
    if (!this.#options.events.has('certificate')) return;
    this.#options.events.emit('certificate', { state, notAfter: material.notAfter, subject: material.subject, reason });
  }

  #fields(material: TlsMaterial): { subject: string | undefined; notAfter: string | undefined } {
    return { subject: material.subject, notAfter: material.notAfter === undefined ? undefined : new Date(material.notAfter).toISOString() };
  }
}

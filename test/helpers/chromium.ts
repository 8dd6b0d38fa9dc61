import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

/** Debian's chromium, installed with apt-get when missing and the tests run as root; otherwise an error saying what to install. */
function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  if (process.getuid?.() !== 0) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (sudo apt-get install -y chromium) to run the dashboard test`);
  const install = spawnSync('sh', ['-c', 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium'], { stdio: 'inherit' });
  if (install.status !== 0 || !existsSync(CHROMIUM)) throw new Error(`installing chromium with apt-get failed (exit ${install.status}); install it by hand: apt-get install -y chromium`);
}

/** Headless Chromium in a fresh profile (playwright passes it as --user-data-dir), removed when the browser closes. */
export async function launchChromium(viewport: { width: number; height: number }): Promise<BrowserContext> {
  ensureChromium();
  const profile = mkdtempSync(join(tmpdir(), 'meshfetch-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // 'close' fires while Chromium may still be writing into its profile (ENOTEMPTY on a first try), so
  // the removal retries (fs.rm's own retries) and a profile that still resists is reported, not thrown
  // from an event handler.
  context.once('close', () => {
    rm(profile, { recursive: true, force: true, maxRetries: 10 }).catch((err: unknown) => {
      process.emitWarning(`could not remove the Chromium profile ${profile}: ${String(err)}`);
    });
  });
  return context;
}

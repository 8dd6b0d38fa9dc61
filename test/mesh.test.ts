import { expect } from 'chai';
import { createMesh, ErrorCode, MeshError } from '../lib/index.ts';
import type { Mesh, UserLogger } from '../lib/index.ts';
import { rejection } from './helpers/rejection.ts';
import { sendJson, startServer } from './helpers/server.ts';

/** A logger that records calls the way pino receives them: (fields, message) or (message). */
function recordingLogger(): UserLogger & { calls: { level: string; args: unknown[] }[] } {
  const calls: { level: string; args: unknown[] }[] = [];
  const at = (level: string) => (...args: unknown[]) => void calls.push({ level, args });
  return { calls, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('mesh', () => {
  it('on(name, listener, { signal }) removes the listener when the signal aborts, and never adds it for an aborted one', async () => {
    let failures = 0;
    const server = await startServer((_req, res) => sendJson(res, failures++ < 4 ? 503 : 200, {}));
    const mesh = createMesh({
      env: {},
      random: () => 0,
      policy: { apiVersion: 'meshfetch/v1', services: { payments: { endpoints: [server.origin] } } },
    });
    try {
      const controller = new AbortController();
      const seen: number[] = [];
      mesh.on('retry', (e) => seen.push(e.attempt), { signal: controller.signal });
      mesh.on('retry', () => expect.fail('added although its signal had aborted'), { signal: AbortSignal.abort() });
      await rejection(mesh.client('payments').get('/a')); // 503, retried twice: attempts 2 and 3
      expect(seen).to.deep.equal([2, 3]);
      controller.abort();
      await mesh.client('payments').get('/b'); // one more 503 retried, then 200
      expect(seen).to.deep.equal([2, 3]);
    } finally {
      await mesh.close();
      await server.close();
    }
  });

  it('`await using` closes the mesh at the end of the block (Symbol.asyncDispose)', async () => {
    let escaped: Mesh;
    {
      await using mesh = createMesh({ env: {} });
      escaped = mesh;
    }
    const err = (await rejection(escaped.client('payments').get('/a'))) as MeshError;
    expect(err).to.be.instanceOf(MeshError);
    expect(err.code).to.equal(ErrorCode.Closed);
  });

  it('logs through a pino-compatible logger given in createMesh options: (fields, message)', async () => {
    const logger = recordingLogger();
    const mesh = createMesh({ env: {}, logger });
    mesh.setPolicy({ apiVersion: 'meshfetch/v1', revision: 'r7', services: {} });
    expect(logger.calls).to.deep.equal([{ level: 'info', args: [{ source: 'setPolicy()', revision: 'r7', services: 0 }, 'policy installed'] }]);
    await mesh.close();
  });
});

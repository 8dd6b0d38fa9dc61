import { expect } from 'chai';
import { createMesh, ErrorCode, MeshError } from '../../lib/index.ts';
import type { Mesh, PolicyDocument } from '../../lib/index.ts';
import { rejection } from '../helpers/rejection.ts';

describe('a call with nowhere to go (no endpoints)', () => {
  const meshes: Mesh[] = [];
  afterEach(async () => {
    await Promise.all(meshes.splice(0).map((m) => m.close()));
  });

  async function failure(service: string, policy?: PolicyDocument): Promise<MeshError> {
    const mesh = createMesh({ env: {}, policy });
    meshes.push(mesh);
    const err = await rejection(mesh.client(service).get('/charges/1'));
    expect(err).to.be.instanceOf(MeshError);
    expect(err).to.include({ code: ErrorCode.Config, service, retryable: false });
    return err as MeshError;
  }

  it('says that only the built-in defaults are loaded, naming MESHFETCH_POLICY and MESHFETCH_CONTROL_PLANE', async () => {
    const err = await failure('payments');
    expect(err.message).to.equal(
      'no endpoints for service "payments": only the built-in defaults are in force, which name no services ' +
        '(no policy came from MESHFETCH_POLICY, MESHFETCH_CONTROL_PLANE or createMesh({ policy }))',
    );
  });

  it('for a service the policy does not name, lists the services it knows and suggests a close one', async () => {
    const policy: PolicyDocument = {
      apiVersion: 'meshfetch/v1',
      services: { payments: { endpoints: ['http://127.0.0.1:1'] }, billing: { endpoints: ['http://127.0.0.1:2'] } },
    };
    expect((await failure('paymnets', policy)).message).to.equal(
      'no endpoints for service "paymnets": the policy in force has no service "paymnets" (did you mean "payments"?); it knows payments, billing',
    );
    expect((await failure('ledger', policy)).message).to.equal(
      'no endpoints for service "ledger": the policy in force has no service "ledger"; it knows payments, billing',
    );
  });

  it('lists at most 20 services', async () => {
    const services = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`svc${i}`, {}]));
    const err = await failure('other', { apiVersion: 'meshfetch/v1', services });
    expect(err.message).to.match(/it knows svc0, svc1, .*, svc19, and 5 more$/);
  });

  it('says when a loaded policy names no services at all', async () => {
    expect((await failure('payments', { apiVersion: 'meshfetch/v1' })).message).to.equal(
      'no endpoints for service "payments": the policy in force names no services',
    );
  });

  it('for a service the policy names without endpoints, says which key to set', async () => {
    const err = await failure('payments', { apiVersion: 'meshfetch/v1', services: { payments: { timeout: '1s' } } });
    expect(err.message).to.equal('no endpoints for service "payments": set services.payments.endpoints (or baseUrl) in the policy');
    expect(err.attempts).to.equal(1);
  });
});

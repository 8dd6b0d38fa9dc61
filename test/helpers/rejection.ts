import { expect } from 'chai';
import { MeshError } from '../../lib/errors.ts';
import type { ErrorCode } from '../../lib/errors.ts';

/** Resolves with what rejected `promise`; fails the test when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** Returns the MeshError with `code` that `fn` throws; fails the test when it throws nothing or something else. */
export function thrownMeshError(fn: () => unknown, code: ErrorCode): MeshError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a ${code} error`).to.be.instanceOf(MeshError);
  expect((caught as MeshError).code, String(caught)).to.equal(code);
  return caught as MeshError;
}

/** The NixcacheError a promise rejects with (a test fails on anything else, or on success). */
import { isNixcacheError, type NixcacheError } from '../../src/errors.js';

export async function rejection(p: Promise<unknown>): Promise<NixcacheError> {
  try {
    await p;
  } catch (e) {
    if (isNixcacheError(e)) return e;
    throw new Error(`expected a NixcacheError, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected a rejection');
}

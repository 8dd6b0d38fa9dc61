import type { HeaderRecord, Middleware } from '../pipeline/types.ts';
import { ATTEMPT_HEADER, DEADLINE_HEADER } from './deadline-context.ts';

/** Stamps each attempt with its number and the time left before the deadline, for the next hop. */
export const propagationLayer: Middleware = (next) => (req, ctx) => {
  const headers: HeaderRecord = { ...req.headers, [ATTEMPT_HEADER]: String(ctx.attempt) };
  if (ctx.deadline !== Infinity) headers[DEADLINE_HEADER] = String(Math.max(0, ctx.deadline - Date.now()));
  return next({ ...req, headers }, ctx);
};

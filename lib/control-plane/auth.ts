import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Refusal } from './http.ts';

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * Admits a write only with `Authorization: Bearer <admin token>`. The comparison takes the same time
 * whatever the guess (both sides are hashed to one length first); the token is never echoed or logged.
 */
export function authorizeWrite(req: IncomingMessage, adminToken: string | undefined): void {
  if (adminToken === undefined) {
    throw new Refusal(403, 'writes-disabled', 'writes are disabled: this control plane was started without MESHFETCH_ADMIN_TOKEN');
  }
  const header = req.headers.authorization;
  const challenge = { headers: { 'www-authenticate': 'Bearer realm="meshfetch"' } };
  if (header === undefined) throw new Refusal(401, 'unauthorized', 'Authorization header: missing; send "Bearer <MESHFETCH_ADMIN_TOKEN>"', challenge);
  const match = /^Bearer +(\S+) *$/i.exec(header);
  if (!match) throw new Refusal(401, 'unauthorized', 'Authorization header: expected "Bearer <token>"', challenge);
  if (!timingSafeEqual(digest(match[1]!), digest(adminToken))) throw new Refusal(403, 'forbidden', 'Authorization header: not the admin token');
}

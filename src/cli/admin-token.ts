// TOLLGATE_ADMIN_TOKEN as `serve` and the commands that call the admin API read it.
import { commaList } from '../lib/comma-list.js';

const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

/**
 * The token, white space around it dropped (a Secret file's trailing newline); none when unset or empty. A token that
 * still holds white space or characters other than visible ASCII cannot travel as `Authorization: Bearer <token>`:
 * served, no one could authenticate, so it is a `problem` (which never shows the token).
 * @example const { token, problem } = readAdminToken(process.env);
 */
export function readAdminToken(env: NodeJS.ProcessEnv): { token?: string; problem?: string } {
  const token = env.TOLLGATE_ADMIN_TOKEN?.trim();
  if (!token) return {};
  if (!VISIBLE_ASCII.test(token)) {
    return { problem: 'TOLLGATE_ADMIN_TOKEN holds white space or characters other than visible ASCII, which an Authorization header cannot carry as a bearer token' };
  }
  return { token };
}

/**
 * TOLLGATE_ADMIN_TOKEN_PREVIOUS: tokens still accepted beside TOLLGATE_ADMIN_TOKEN while their callers move to the new
 * one (comma-separated; white space around each dropped), so the token can change without a moment when every caller
 * is refused. A `problem` when one could not be sent as a bearer token, or when there is no current token.
 */
export function readPreviousAdminTokens(env: NodeJS.ProcessEnv): { tokens: string[]; problem?: string } {
  const tokens = commaList(env.TOLLGATE_ADMIN_TOKEN_PREVIOUS);
  if (tokens.length === 0) return { tokens };
  if (!env.TOLLGATE_ADMIN_TOKEN?.trim()) return { tokens: [], problem: 'TOLLGATE_ADMIN_TOKEN_PREVIOUS is set without TOLLGATE_ADMIN_TOKEN: previous tokens are accepted beside a current one' };
  if (!tokens.every((t) => VISIBLE_ASCII.test(t))) {
    return { tokens: [], problem: 'TOLLGATE_ADMIN_TOKEN_PREVIOUS holds a token with characters other than visible ASCII, which an Authorization header cannot carry as a bearer token' };
  }
  return { tokens };
}

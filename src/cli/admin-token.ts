// TOLLGATE_ADMIN_TOKEN as `serve` and the commands that call the admin API read it.

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

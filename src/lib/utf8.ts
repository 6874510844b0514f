// Text that must be UTF-8 (manifests, admin request bodies): decoded with replacement, a Latin-1 "café" was stored as
// "caf\uFFFD", a name no client can send.
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The text of `bytes` (a leading byte order mark dropped), or undefined when they are not UTF-8. */
export function utf8Text(bytes: Uint8Array): string | undefined {
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

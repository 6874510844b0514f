// Headers that frame an HTTP message or belong to one connection: the proxy sets them itself. A policy that set or
// removed one would desynchronize the connection (a content-length that lies: the rest of the body read as the next
// answer) or break the exchange (`expect`, `upgrade`), so no policy may name them.
export const FRAMING_HEADERS: ReadonlySet<string> = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'te', 'upgrade', 'trailer', 'expect', 'proxy-connection']);

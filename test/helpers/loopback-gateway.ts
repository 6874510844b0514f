// What nearly every in-process gateway of the tests shares: random free ports on loopback, and no file watching
// (a test that changes files reloads them itself, or says `watch: true`).
export const LOOPBACK = { port: 0, adminPort: 0, host: '127.0.0.1', watch: false } as const;

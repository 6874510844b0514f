// The processes of the ext_proc overhead benchmark: tollgate as a policy decision point behind its ext_proc listener,
// and tollgate as a data plane without policies of its own that calls it. Each prints "READY <port>".
import { startGateway } from '../src/gateway/gateway.js';
import { composeHooks } from '../src/extproc/compose-hooks.js';
import { extprocHooks } from '../src/extproc/extension-hooks.js';
import type { ExtensionEvent } from '../src/extproc/extension-callouts.js';
import { serveUntilStopped } from './child.js';
import { chainManifests, seedKeys, type Chain } from './overhead-chains.js';

/** The policy chain behind an ext_proc listener; prints the API keys the load should use, then READY <ext_proc port>. */
async function pdp(upstreamPort: number, chain: Chain): Promise<void> {
  const gw = await startGateway({ configPaths: [], manifests: chainManifests(chain, `http://127.0.0.1:${upstreamPort}`), port: 0, adminPort: 0, host: '127.0.0.1', watch: false, extprocPort: 0, extproc: { roles: ['pdp'] } });
  process.stdout.write(`KEYS ${(await seedKeys(gw, 64)).join(',')}\n`);
  serveUntilStopped(gw.extprocPort!, () => gw.close());
}

/** A data plane whose only policy step is the ext_proc call to `address`. */
async function frontend(upstreamPort: number, address: string, events: readonly ExtensionEvent[]): Promise<void> {
  const gw = await startGateway({ configPaths: [], manifests: chainManifests('none', `http://127.0.0.1:${upstreamPort}`), port: 0, adminPort: 0, host: '127.0.0.1', watch: false });
  const ext = extprocHooks({ name: 'pdp', address, supportedEvents: events, timeoutMs: 1000, failOpen: false }, { registry: gw.registry });
  gw.dataPlane.hooks = composeHooks(ext, gw.apim.hooks);
  gw.apim.onHooks = (hooks) => (gw.dataPlane.hooks = composeHooks(ext, hooks));
  serveUntilStopped(gw.port, async () => {
    await gw.close();
    ext.close();
  });
}

const REQUEST: ExtensionEvent[] = ['RequestHeaders', 'RequestBody'];
const [role, port, arg, events] = process.argv.slice(2);
if (role === 'pdp') await pdp(Number(port), (arg ?? 'default') as Chain);
else if (role === 'frontend') await frontend(Number(port), arg, events === 'all' ? [...REQUEST, 'ResponseHeaders', 'ResponseBody'] : REQUEST);
else throw new Error(`unknown role ${role}`);

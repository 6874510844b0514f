// A gateway for tests of what the admin API stores: its own SQLite file, a model server that is down (a request no
// policy refuses gets 503), and an OpenAPI contract on the user field whose pattern each test picks.
import { after, before } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest } from '../../src/config/manifest.js';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway/gateway.js';
import { silentLogger } from '../../src/lib/logger.js';
import type { JsonObject } from '../../src/store/index.js';
import { randomBase62 } from '../../src/store/keys.js';
import { poolAndModel } from './manifests.js';
import { LOOPBACK } from './loopback-gateway.js';

export const APIM_V1 = 'apim.googleapis.com/v1';

/** An OASValidation's spec on the chat path whose body schema constrains `user` with `pattern`. */
export function contractSpec(pattern: string): JsonObject {
  const schema = { type: 'object', properties: { user: { type: 'string', pattern } } };
  return { openApi: { openapi: '3.0.0', info: { title: 't', version: '1' }, paths: { '/v1/chat/completions': { post: { requestBody: { content: { 'application/json': { schema } } } } } } } };
}

/** That OASValidation (`contract`), with the extension policy (`ext`) and the template running it (`checks`). */
export function contract(pattern: string): JsonObject[] {
  return [
    { apiVersion: APIM_V1, kind: 'APIMExtensionPolicy', metadata: { name: 'ext' }, spec: { targetRef: { name: 'tollgate' } } },
    { apiVersion: APIM_V1, kind: 'OASValidation', metadata: { name: 'contract' }, spec: contractSpec(pattern) },
    { apiVersion: APIM_V1, kind: 'ApimTemplate', metadata: { name: 'checks' }, spec: { templates: [{ policies: [{ kind: 'OASValidation', name: 'contract' }] }] } },
  ];
}

export interface ContractGateway {
  readonly gw: Gateway;
  /** Stops the gateway and starts it again on the same store. */
  restart(): Promise<Gateway>;
  /** A chat request with this `user`; its status. */
  chat(user: string): Promise<number>;
}

/**
 * Starts the gateway before the tests of the file or suite (with `manifests` as --config files) and removes
 * everything after; with `postgres` (a DATABASE_URL) on a fresh schema there, dropped after.
 */
export function useContractGateway(name: string, manifests: Manifest[] = [], postgres?: string): ContractGateway {
  const dir = mkdtempSync(join(tmpdir(), `tollgate-${name}-`));
  const schema = `test_${name.replace(/\W/g, '_')}_${randomBase62(10).toLowerCase()}`;
  const options: GatewayOptions = {
    configPaths: [],
    manifests: [...poolAndModel(['http://127.0.0.1:9']), ...manifests],
    ...LOOPBACK,
    db: postgres ?? `sqlite:${join(dir, 'tollgate.db')}`,
    ...(postgres && { dbSchema: schema }),
    analyticsDir: join(dir, 'analytics'),
    logger: silentLogger,
  };
  let gw: Gateway | undefined;
  before(async () => {
    gw = await startGateway(options);
  });
  after(async () => {
    if (postgres) await gw?.apim.db.dropSchema();
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get gw() {
      return gw!;
    },
    async restart() {
      await gw?.close();
      gw = undefined;
      gw = await startGateway(options);
      return gw;
    },
    async chat(user) {
      const r = await fetch(`${gw!.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', user, messages: [{ role: 'user', content: 'hi' }] }) });
      await r.arrayBuffer();
      return r.status;
    },
  };
}

// GatewayHooks for the ExtensionChain manifests of a configuration, to compose with the policy engine's.
import type { Manifest } from '../config/manifest.js';
import type { GatewayHooks } from '../gateway/hooks.js';
import type { Registry } from 'prom-client';
import { composeHooks } from './compose-hooks.js';
import { extprocHooks, type ExtensionHooks } from './extension-hooks.js';
import type { ExtensionChainSpec } from './extension-kind.js';

export interface ExtensionChain {
  /** Every extension, chains in document order; empty when there are none. */
  hooks: GatewayHooks;
  /** Every extension's name (`chain/extension`), as its metrics label it. */
  names: readonly string[];
  /** Closes every channel (on the next configuration load, or shutdown). */
  close(): void;
}

/**
 * @example
 * const chain = extensionChain(config.manifests, { registry, maxBodyBytes: config.settings.server.maxBodyBytes });
 * dataPlane.hooks = composeHooks(chain.hooks, engine.hooks);
 */
export function extensionChain(manifests: readonly Manifest[], deps: { registry?: Registry; maxBodyBytes?: number } = {}): ExtensionChain {
  const all: ExtensionHooks[] = [];
  const names: string[] = [];
  for (const m of manifests) {
    if (m.kind !== 'ExtensionChain') continue;
    for (const e of (m.spec as ExtensionChainSpec).extensions) {
      const name = `${m.metadata.name}/${e.name}`;
      names.push(name);
      all.push(
        extprocHooks(
          {
            name,
            address: e.address,
            authority: e.authority,
            tls: e.tls?.pem,
            supportedEvents: e.supportedEvents,
            requestBodySendMode: e.requestBodySendMode,
            responseBodySendMode: e.responseBodySendMode,
            timeoutMs: e.timeout,
            failOpen: e.failOpen,
            // An extension may send back a body as large as a request may be: its answers are sized for it.
            maxBodyBytes: deps.maxBodyBytes,
          },
          deps,
        ),
      );
    }
  }
  return { hooks: composeHooks(...all), names, close: () => all.forEach((h) => h.close()) };
}

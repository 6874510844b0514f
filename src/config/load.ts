// Loading configuration: --config paths (plus manifests given in code) → validated, compiled RuntimeConfig.
import { readManifestFiles } from './files.js';
import type { Manifest } from './manifest.js';
import { compileConfig, type RuntimeConfig } from './runtime-config.js';

export function loadConfig(paths: string[], extra: Manifest[] = []): RuntimeConfig {
  return compileConfig([...readManifestFiles(paths), ...extra]);
}

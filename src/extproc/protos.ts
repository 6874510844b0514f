// The ext_proc and gRPC health service definitions: the ext_proc proto as it ships in @grpc/grpc-js-xds (loaded
// with proto-loader, never copied), and grpc.health.v1, which ships in no installed package, as a JSON descriptor.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ServiceDefinition } from '@grpc/grpc-js';
import type { fromJSON, Options } from '@grpc/proto-loader';
import { loadProtoLoader } from './grpc.js';

export const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';
export const HEALTH_SERVICE = 'grpc.health.v1.Health';

/** Field names as the .proto spells them (snake_case), except google.protobuf.Value's, which protobufjs bundles in camelCase. */
const LOADER_OPTIONS: Options = { keepCase: true, longs: String, enums: Number, defaults: false, oneofs: true };

const HEALTH_DESCRIPTOR: Parameters<typeof fromJSON>[0] = {
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: 'ServingStatus', id: 1 } },
                  nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } },
                },
                Health: {
                  methods: {
                    Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse', comment: '' },
                    Watch: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse', responseStream: true, comment: '' },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

let extProc: ServiceDefinition | undefined;
let health: ServiceDefinition | undefined;

/** Loaded on first use (about half a second: the Envoy API tree is large), then shared. */
export function extProcService(): ServiceDefinition {
  if (!extProc) {
    const deps = join(dirname(createRequire(import.meta.url).resolve('@grpc/grpc-js-xds/package.json')), 'deps');
    const includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
    const pkg = loadProtoLoader().loadSync('envoy/service/ext_proc/v3/external_processor.proto', { ...LOADER_OPTIONS, includeDirs });
    extProc = pkg[EXT_PROC_SERVICE] as ServiceDefinition;
  }
  return extProc;
}

export function healthService(): ServiceDefinition {
  health ??= loadProtoLoader().fromJSON(HEALTH_DESCRIPTOR, LOADER_OPTIONS)[HEALTH_SERVICE] as ServiceDefinition;
  return health;
}

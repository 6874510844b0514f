// gRPC and its proto loader, loaded when an ext_proc listener or client first needs them: a gateway without
// ext_proc never loads them (with protobufjs, over a hundred modules).
import type * as Grpc from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';
import { lazyRequire } from '../lib/lazy-require.js';

export const loadGrpc = lazyRequire<typeof Grpc>('@grpc/grpc-js');
export const loadProtoLoader = lazyRequire<typeof ProtoLoader>('@grpc/proto-loader');

// The ext_proc messages tollgate reads and writes, typed as proto-loader decodes them (snake_case fields; bytes as
// Buffer; enums as numbers; `request`/`response`/`mutation` name the oneof member that is set).

/** google.protobuf.Value (protobufjs spells its fields in camelCase). */
export interface PbValue {
  nullValue?: number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: PbStruct;
  listValue?: { values?: PbValue[] };
}

export interface PbStruct {
  fields?: Record<string, PbValue>;
}

export interface HeaderValue {
  key: string;
  value?: string;
  raw_value?: Buffer;
}

export interface HeaderMap {
  headers?: HeaderValue[];
}

/** HeaderValueOption.HeaderAppendAction */
export const APPEND_IF_EXISTS_OR_ADD = 0;
export const ADD_IF_ABSENT = 1;
export const OVERWRITE_IF_EXISTS_OR_ADD = 2;
export const OVERWRITE_IF_EXISTS = 3;

export interface HeaderValueOption {
  header: HeaderValue;
  append?: { value?: boolean };
  append_action?: number;
  keep_empty_value?: boolean;
}

export interface HeaderMutation {
  set_headers?: HeaderValueOption[];
  remove_headers?: string[];
}

export interface BodyMutation {
  body?: Buffer;
  clear_body?: boolean;
  mutation?: 'body' | 'clear_body';
}

/** CommonResponse.ResponseStatus (0, the default, is CONTINUE). */
export const CONTINUE_AND_REPLACE = 1;

export interface CommonResponse {
  status?: number;
  header_mutation?: HeaderMutation;
  body_mutation?: BodyMutation;
  clear_route_cache?: boolean;
}

export interface HttpHeaders {
  headers?: HeaderMap;
  end_of_stream?: boolean;
}

export interface HttpBody {
  body?: Buffer;
  end_of_stream?: boolean;
}

export interface HttpTrailers {
  trailers?: HeaderMap;
}

export interface ImmediateResponse {
  status: { code: number };
  headers?: HeaderMutation;
  body?: Buffer;
  details?: string;
}

export type RequestKind = 'request_headers' | 'response_headers' | 'request_body' | 'response_body' | 'request_trailers' | 'response_trailers';

export interface ProcessingRequest {
  request?: RequestKind;
  request_headers?: HttpHeaders;
  response_headers?: HttpHeaders;
  request_body?: HttpBody;
  response_body?: HttpBody;
  request_trailers?: HttpTrailers;
  response_trailers?: HttpTrailers;
  metadata_context?: { filter_metadata?: Record<string, PbStruct> };
  observability_mode?: boolean;
}

export interface ProcessingResponse {
  response?: RequestKind | 'immediate_response';
  request_headers?: { response?: CommonResponse };
  response_headers?: { response?: CommonResponse };
  request_body?: { response?: CommonResponse };
  response_body?: { response?: CommonResponse };
  request_trailers?: { header_mutation?: HeaderMutation };
  response_trailers?: { header_mutation?: HeaderMutation };
  immediate_response?: ImmediateResponse;
  dynamic_metadata?: PbStruct;
}

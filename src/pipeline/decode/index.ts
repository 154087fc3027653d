// OTLP request decoders (protobuf and JSON, traces and logs): bytes in, validated rows out.
// They run in the decode workers; the main thread never calls them.
export { DecodeError, WireReader, WireWriter } from './wire.ts';
export type { DecodeLimits, DecodeResult } from './common.ts';
export { decodeTracesProto, decodeLogsProto } from './otlp-proto.ts';
export { decodeTracesJson, decodeLogsJson } from './otlp-json.ts';

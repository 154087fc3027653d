// The memory and SQLite backends' encoder module: OTLP protobuf and OTLP/JSON requests are
// transcoded straight to row lines (src/storage/rowjson.ts), no row objects in between.
import type { DecodeLimits } from '../../decode/common.ts';
import type { EncoderModule, RequestEncoder } from '../encoder.ts';
import { transcodeLogsJson, transcodeTracesJson } from './json.ts';
import { transcodeLogsProto, transcodeTracesProto } from './proto.ts';

/** Creates the row-line RequestEncoder (memory and SQLite take no options). */
export function createEncoder(_options: Record<string, never>, limits: DecodeLimits): RequestEncoder {
  return {
    encode(signal, format, body) {
      if (format === 'json') return signal === 'traces' ? transcodeTracesJson(body, limits) : transcodeLogsJson(body, limits);
      return signal === 'traces' ? transcodeTracesProto(body, limits) : transcodeLogsProto(body, limits);
    },
  };
}

export default { createEncoder } satisfies EncoderModule<Record<string, never>>;

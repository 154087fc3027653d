// The memory and SQLite backends' encoder module: OTLP protobuf is transcoded straight to row
// lines; OTLP/JSON goes through its row decoder and the row-line encoder (same bytes).
import { createEncoder as createRowEncoder } from '../../../storage/rowjson.ts';
import type { DecodeLimits } from '../../decode/common.ts';
import { fromRowEncoder, type EncoderModule, type RequestEncoder } from '../encoder.ts';
import { transcodeLogsProto, transcodeTracesProto } from './proto.ts';

/** Creates the row-line RequestEncoder (memory and SQLite take no options). */
export function createEncoder(_options: Record<string, unknown>, limits: DecodeLimits): RequestEncoder {
  const rows = fromRowEncoder(createRowEncoder(), limits);
  return {
    encode(signal, format, body) {
      if (format === 'json') return rows.encode(signal, format, body);
      return signal === 'traces' ? transcodeTracesProto(body, limits) : transcodeLogsProto(body, limits);
    },
  };
}

export default { createEncoder } satisfies EncoderModule;

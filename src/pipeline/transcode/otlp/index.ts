// The memory and SQLite stores' encoder module: OTLP protobuf requests are kept as they arrived (each item's
// bytes behind an index header, src/storage/otlp-chunks.ts). OTLP/JSON requests go through the
// row decoder and back to protobuf first (rows.ts): the store keeps one format, and JSON, the
// rarer and already costlier encoding, pays the extra step.
import { decodeLogsJson, decodeTracesJson } from '../../decode/index.ts';
import type { DecodeLimits } from '../../decode/common.ts';
import type { EncoderModule, RequestEncoder } from '../encoder.ts';
import { transcodeLogsProto, transcodeTracesProto } from './proto.ts';
import { encodeLogChunks, encodeSpanChunks } from './rows.ts';

/** Creates the memory store's RequestEncoder (it takes no options). */
export function createEncoder(_options: Record<string, never>, limits: DecodeLimits): RequestEncoder {
  return {
    encode(signal, format, body) {
      if (format === 'protobuf') return signal === 'traces' ? transcodeTracesProto(body, limits) : transcodeLogsProto(body, limits);
      if (signal === 'traces') {
        const r = decodeTracesJson(body, limits);
        return { accepted: r.rows.length, rejected: r.rejected, errorMessage: r.errorMessage, chunks: encodeSpanChunks(r.rows) };
      }
      const r = decodeLogsJson(body, limits);
      return { accepted: r.rows.length, rejected: r.rejected, errorMessage: r.errorMessage, chunks: encodeLogChunks(r.rows) };
    },
  };
}

export default { createEncoder } satisfies EncoderModule<Record<string, never>>;

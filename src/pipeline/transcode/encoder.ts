// The encoder seam of the decode workers: one module per backend exports
// `createEncoder(options, limits)` (an EncoderModule) returning a RequestEncoder, which the
// worker calls with each request's bytes. A transcoding encoder scans the wire bytes and writes
// the store's bytes in one pass; a backend without one gets the row path (decode to SpanRow /
// LogRow objects, then its RowEncoder) through fromRowEncoder, with the same results.
import type { Signal } from '../../model/signal.ts';
import type { EncodedChunk } from '../../storage/backend.ts';
import type { RowEncoder } from '../../storage/encoders.ts';
import type { DecodeLimits } from '../decode/common.ts';
import { decodeLogsJson, decodeLogsProto, decodeTracesJson, decodeTracesProto } from '../decode/index.ts';

export type RequestFormat = 'protobuf' | 'json';

/** What one export request became. Requests refused whole throw DecodeError instead. */
export interface EncodedRequest {
  /** Items stored (spans or log records). */
  accepted: number;
  /** Items dropped by validation (partial success). */
  rejected: number;
  /** The partial-success message; '' when nothing was rejected. */
  errorMessage: string;
  /** The accepted items in the backend's format; [] when none. */
  chunks: EncodedChunk[];
}

/** Turns OTLP request bytes into a backend's store bytes, in a decode worker. */
export interface RequestEncoder {
  encode(signal: Signal, format: RequestFormat, body: Uint8Array): EncodedRequest;
}

/** The shape of a request-encoder module (one per store format; see registry.ts). */
export interface EncoderModule<Options> {
  createEncoder(options: Options, limits: DecodeLimits): RequestEncoder;
}

/** The row path as a RequestEncoder: decode into row objects, then the backend's RowEncoder. */
export function fromRowEncoder(rows: RowEncoder, limits: DecodeLimits): RequestEncoder {
  return {
    encode(signal, format, body) {
      if (signal === 'traces') {
        const r = format === 'json' ? decodeTracesJson(body, limits) : decodeTracesProto(body, limits);
        return { accepted: r.rows.length, rejected: r.rejected, errorMessage: r.errorMessage, chunks: rows.encodeSpans(r.rows) };
      }
      const r = format === 'json' ? decodeLogsJson(body, limits) : decodeLogsProto(body, limits);
      return { accepted: r.rows.length, rejected: r.rejected, errorMessage: r.errorMessage, chunks: rows.encodeLogs(r.rows) };
    },
  };
}

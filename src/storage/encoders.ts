// What a store asks of the decode workers: an EncoderSpec names the store's byte format and its
// options. The workers' registry (src/pipeline/transcode/registry.ts) turns a spec into a request
// encoder: a transcoder where the format has one, else the store's RowEncoder behind the row path.
// loadRowEncoder() gives the row encoders themselves (rows → store bytes), for code that holds
// rows (tests, benchmarks). Imports stay lazy, and every edge is typed by encoder name.
import type { LogRow, SpanRow } from '../model/rows.ts';
import type { EncodedChunk } from './backend.ts';

/** Encodes normalized rows in a decode worker. */
export interface RowEncoder {
  encodeSpans(rows: SpanRow[]): EncodedChunk[];
  encodeLogs(rows: LogRow[]): EncodedChunk[];
}

/** What a row-encoder module exports. */
export interface RowEncoderModule<O> {
  createEncoder(options: O): RowEncoder;
}

/** Each encoder's options, keyed by encoder name (structured-clone safe: they cross to the workers). */
export interface EncoderOptionsByName {
  /** JSON lines with an index header: the SQLite store's format before it kept protobuf (row path only; its chunks are still read from older write-ahead logs). */
  rowjson: Record<string, never>;
  /** OTLP protobuf as it arrived, behind an index header (memory and SQLite stores). */
  otlp: Record<string, never>;
  /** PostgreSQL COPY. */
  postgres: { format: 'binary' | 'text' };
  /** ClickHouse RowBinary, one chunk per shard. */
  clickhouse: { partitions: number };
}

export type EncoderName = keyof EncoderOptionsByName;

/** An encoder and its options, as a store names it. */
export type EncoderSpec = { [N in EncoderName]: { name: N; options: EncoderOptionsByName[N] } }[EncoderName];

/**
 * Store bytes an encoder writes per byte of an OTLP/protobuf request, a little over what requests
 * take (the bench traffic's and a scratch load's: otlp 1.07-1.22, COPY 3.5-3.7, RowBinary
 * 1.1-1.8, JSON lines 3.9-4.2). A transcoder takes that much room up front; Ingest charges it
 * against writer.maxQueueBytes while the request decodes, so the queue holds its bound when the
 * rows arrive instead of growing by what the rows take over the request.
 */
export const STORE_BYTES_PER_REQUEST_BYTE: { readonly [N in EncoderName]: number } = { rowjson: 4.5, otlp: 1.25, postgres: 4, clickhouse: 2 };

/** The row encoders, by name. */
export const ROW_ENCODERS: { [N in EncoderName]: () => Promise<RowEncoderModule<EncoderOptionsByName[N]>> } = {
  rowjson: () => import('./rowjson.ts'),
  otlp: () => import('../pipeline/transcode/otlp/rows.ts'),
  postgres: () => import('./postgres/encoder.ts'),
  clickhouse: () => import('./clickhouse/encoder.ts'),
};

/** Loads and creates the row encoder a spec names. */
export async function loadRowEncoder(spec: EncoderSpec): Promise<RowEncoder> {
  switch (spec.name) {
    case 'rowjson':
      return (await ROW_ENCODERS.rowjson()).createEncoder(spec.options);
    case 'otlp':
      return (await ROW_ENCODERS.otlp()).createEncoder(spec.options);
    case 'postgres':
      return (await ROW_ENCODERS.postgres()).createEncoder(spec.options);
    case 'clickhouse':
      return (await ROW_ENCODERS.clickhouse()).createEncoder(spec.options);
  }
}

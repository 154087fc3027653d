// The encoder registry: which module encodes rows for which store, and with what options. The
// storage adapters name their encoder with an EncoderSpec; the decode workers load it through
// loadEncoder(). Imports stay lazy (a worker loads only its store's encoder) but the edge is
// typed: each module must satisfy EncoderModule for its own options.
import type { LogRow, SpanRow } from '../model/rows.ts';
import type { EncodedChunk } from './backend.ts';

/** Encodes normalized rows in a decode worker. */
export interface RowEncoder {
  encodeSpans(rows: SpanRow[]): EncodedChunk[];
  encodeLogs(rows: LogRow[]): EncodedChunk[];
}

/** What an encoder module exports. */
export interface EncoderModule<O> {
  createEncoder(options: O): RowEncoder;
}

/** Each encoder's options, keyed by encoder name (structured-clone safe: they cross to the workers). */
export interface EncoderOptionsByName {
  /** JSON lines with an index header (memory and SQLite stores). */
  rowjson: Record<string, never>;
  /** PostgreSQL COPY. */
  postgres: { format: 'binary' | 'text' };
  /** ClickHouse RowBinary, one chunk per shard. */
  clickhouse: { partitions: number };
}

export type EncoderName = keyof EncoderOptionsByName;

/** An encoder and its options, as a store names it. */
export type EncoderSpec = { [N in EncoderName]: { name: N; options: EncoderOptionsByName[N] } }[EncoderName];

const MODULES: { [N in EncoderName]: () => Promise<EncoderModule<EncoderOptionsByName[N]>> } = {
  rowjson: () => import('./rowjson.ts'),
  postgres: () => import('./postgres/encoder.ts'),
  clickhouse: () => import('./clickhouse/encoder.ts'),
};

/** Loads and creates the encoder a spec names. */
export async function loadEncoder(spec: EncoderSpec): Promise<RowEncoder> {
  switch (spec.name) {
    case 'rowjson':
      return (await MODULES.rowjson()).createEncoder(spec.options);
    case 'postgres':
      return (await MODULES.postgres()).createEncoder(spec.options);
    case 'clickhouse':
      return (await MODULES.clickhouse()).createEncoder(spec.options);
  }
}

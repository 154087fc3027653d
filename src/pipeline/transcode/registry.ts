// The decode workers' encoder registry: for each store format (EncoderSpec name) the module that
// turns request bytes into store bytes. A format with a transcoder scans the wire bytes and writes
// the store's bytes in one pass; the others decode to row objects and use the store's RowEncoder
// (the row path). Loading stays lazy (a worker loads its store's module only) and each entry is
// checked against its own options type.
import { ROW_ENCODERS, type EncoderName, type EncoderOptionsByName, type EncoderSpec, type RowEncoderModule } from '../../storage/encoders.ts';
import type { DecodeLimits } from '../decode/common.ts';
import { fromRowEncoder, type EncoderModule, type RequestEncoder } from './encoder.ts';

/** A store's row encoder behind the row path. */
async function rowPath<O>(load: () => Promise<RowEncoderModule<O>>): Promise<EncoderModule<O>> {
  const rows = await load();
  return { createEncoder: (options, limits) => fromRowEncoder(rows.createEncoder(options), limits) };
}

const REQUEST_ENCODERS: { [N in EncoderName]: () => Promise<EncoderModule<EncoderOptionsByName[N]>> } = {
  rowjson: () => rowPath(ROW_ENCODERS.rowjson),
  otlp: () => import('./otlp/index.ts'),
  postgres: () => import('./copy/index.ts'),
  clickhouse: () => import('./rowbinary/index.ts'),
};

/** Loads the request encoder for a store's encoder spec (once per worker thread). */
export async function loadRequestEncoder(spec: EncoderSpec, limits: DecodeLimits): Promise<RequestEncoder> {
  switch (spec.name) {
    case 'rowjson':
      return (await REQUEST_ENCODERS.rowjson()).createEncoder(spec.options, limits);
    case 'otlp':
      return (await REQUEST_ENCODERS.otlp()).createEncoder(spec.options, limits);
    case 'postgres':
      return (await REQUEST_ENCODERS.postgres()).createEncoder(spec.options, limits);
    case 'clickhouse':
      return (await REQUEST_ENCODERS.clickhouse()).createEncoder(spec.options, limits);
  }
}

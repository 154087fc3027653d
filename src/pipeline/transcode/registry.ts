// Which encoder module a decode worker loads for a backend's EncoderSpec: the transcoding module
// where one exists, otherwise the backend's own RowEncoder behind the row path.
import type { EncoderSpec, RowEncoder } from '../../storage/backend.ts';
import { ROWJSON_ENCODER_MODULE } from '../../storage/rowjson.ts';
import type { DecodeLimits } from '../decode/common.ts';
import { fromRowEncoder, type EncoderModule, type RequestEncoder } from './encoder.ts';

/** Row-encoder module URL → the module that transcodes for the same backend format. */
const TRANSCODERS: ReadonlyMap<string, string> = new Map([[ROWJSON_ENCODER_MODULE, new URL('./rowjson/index.ts', import.meta.url).href]]);

/** Loads the RequestEncoder for a backend's encoder spec (called once per worker thread). */
export async function loadRequestEncoder(spec: EncoderSpec, limits: DecodeLimits): Promise<RequestEncoder> {
  const transcoder = TRANSCODERS.get(spec.module);
  if (transcoder !== undefined) return ((await import(transcoder)) as EncoderModule).createEncoder(spec.options, limits);
  const rows = (await import(spec.module)) as { createEncoder(options: Record<string, unknown>): RowEncoder };
  return fromRowEncoder(rows.createEncoder(spec.options), limits);
}

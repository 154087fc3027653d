// The PostgreSQL backend's encoder module: OTLP protobuf requests are transcoded straight to
// binary COPY tuples, no row objects in between. OTLP/JSON requests and the text COPY format
// take the row path (decode to rows, then the COPY row encoder).
import { createEncoder as createRowEncoder, type PostgresEncoderOptions } from '../../../storage/postgres/encoder.ts';
import type { DecodeLimits } from '../../decode/common.ts';
import { fromRowEncoder, type EncoderModule, type RequestEncoder } from '../encoder.ts';
import { transcodeProto } from './proto.ts';

/** Creates the COPY RequestEncoder of a PostgreSQL store. */
export function createEncoder(options: PostgresEncoderOptions, limits: DecodeLimits): RequestEncoder {
  const rowPath = fromRowEncoder(createRowEncoder(options), limits);
  if (options.format !== 'binary') return rowPath;
  return {
    encode(signal, format, body) {
      if (format === 'json') return rowPath.encode(signal, format, body);
      return transcodeProto(signal, body, limits, rowPath);
    },
  };
}

export default { createEncoder } satisfies EncoderModule<PostgresEncoderOptions>;

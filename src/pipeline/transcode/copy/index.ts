// The PostgreSQL backend's encoder module: OTLP protobuf requests are transcoded straight to
// binary COPY tuples, no row objects in between. OTLP/JSON requests and the text COPY format
// take the row path (decode to rows, then the COPY row encoder).
import { chunkDays } from '../../../storage/postgres/days.ts';
import { createEncoder as createRowEncoder, type PostgresEncoderOptions } from '../../../storage/postgres/encoder.ts';
import type { DecodeLimits } from '../../decode/common.ts';
import { fromRowEncoder, type EncoderModule, type RequestEncoder } from '../encoder.ts';
import { transcodeProto } from './proto.ts';

/** Creates the COPY RequestEncoder of a PostgreSQL store; each chunk carries the days of its rows. */
export function createEncoder(options: PostgresEncoderOptions, limits: DecodeLimits): RequestEncoder {
  const rowPath = fromRowEncoder(createRowEncoder(options), limits);
  return {
    encode(signal, format, body) {
      const out = options.format !== 'binary' || format === 'json' ? rowPath.encode(signal, format, body) : transcodeProto(signal, body, limits, rowPath);
      // The transcoder tells its chunks' days; the row path's are read from the tuples.
      for (const c of out.chunks) c.days ??= [...chunkDays([c.data], options.format)];
      return out;
    },
  };
}

export default { createEncoder } satisfies EncoderModule<PostgresEncoderOptions>;

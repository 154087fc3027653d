// The ClickHouse backend's encoder module: OTLP protobuf requests are transcoded straight to
// RowBinary (one chunk per shard), no row objects in between. OTLP/JSON requests still take the
// row path (decode to rows, then the RowBinary row encoder).
import { createEncoder as createRowEncoder, type EncoderOptions } from '../../../storage/clickhouse/encoder.ts';
import type { DecodeLimits } from '../../decode/common.ts';
import { fromRowEncoder, type EncoderModule, type RequestEncoder } from '../encoder.ts';
import { transcodeProto } from './proto.ts';

/** Creates the RowBinary RequestEncoder for a store of `partitions` shards. */
export function createEncoder(options: EncoderOptions, limits: DecodeLimits): RequestEncoder {
  const shards = Math.max(1, options.partitions);
  const rowPath = fromRowEncoder(createRowEncoder(options), limits);
  return {
    encode(signal, format, body) {
      if (format === 'json') return rowPath.encode(signal, format, body);
      return transcodeProto(signal, body, limits, shards, rowPath);
    },
  };
}

export default { createEncoder } satisfies EncoderModule<EncoderOptions>;

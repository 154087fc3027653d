// Streams a batch of encoded chunks through COPY.
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { BINARY_HEADER, BINARY_TRAILER, type CopyFormat } from './columns.ts';

/** COPYs the chunks into `target` on the client (framing binary batches with header and trailer). */
export async function copyChunks(
  client: PoolClient,
  target: string,
  columns: string,
  chunks: Uint8Array[],
  format: CopyFormat,
): Promise<void> {
  const stream = client.query(copyFrom(`COPY ${target} (${columns}) FROM STDIN WITH (FORMAT ${format})`));
  await new Promise<void>((resolve, reject) => {
    stream.on('error', reject);
    stream.on('finish', resolve);
    if (format === 'binary') stream.write(BINARY_HEADER);
    for (const c of chunks) stream.write(c);
    if (format === 'binary') stream.write(BINARY_TRAILER);
    stream.end();
  });
}

// Streams a batch of encoded chunks through COPY.
import pg from 'pg';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { BINARY_HEADER, BINARY_TRAILER, type CopyFormat } from './columns.ts';

/**
 * COPYs the chunks into `target` on the client (framing binary batches with header and trailer).
 *
 * One chunk at a time, the next once the last is handed to the socket: the server can end a COPY
 * with an error while data is still being sent (a statement timeout, a cancel, a value refused),
 * and pg-copy-streams lets go of the connection then. Chunks it still held queued for the
 * socket's next drain were written to that connection anyway, a TypeError thrown from a socket
 * event that ended the process. Nothing is written after an error.
 *
 * An error of the client's own (the query_timeout that bounds a server that stopped answering,
 * a broken socket) leaves the COPY the connection's active query, and whatever the server sends
 * once it answers again (a network stall that ends) went to the stream that let go of the
 * connection: the same TypeError. The connection is cut then; it is discarded anyway.
 */
export async function copyChunks(
  client: PoolClient,
  target: string,
  columns: string,
  chunks: Uint8Array[],
  format: CopyFormat,
): Promise<void> {
  const stream = client.query(copyFrom(`COPY ${target} (${columns}) FROM STDIN WITH (FORMAT ${format})`));
  const parts = format === 'binary' ? [BINARY_HEADER, ...chunks, BINARY_TRAILER] : chunks;
  await new Promise<void>((resolve, reject) => {
    let failed = false;
    stream.on('error', (err) => {
      if (!failed && !(err instanceof pg.DatabaseError)) client.connection.stream.destroy();
      failed = true;
      reject(err);
    });
    stream.on('finish', resolve);
    const next = (i: number): void => {
      if (failed) return;
      if (i === parts.length) {
        stream.end();
        return;
      }
      stream.write(parts[i]!, (err) => {
        if (err) {
          failed = true;
          reject(err);
        } else next(i + 1);
      });
    };
    next(0);
  });
}

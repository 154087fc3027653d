// The network between the collector and PostgreSQL stalls while a write's COPY waits for the
// server's go-ahead, longer than the client-side bound (storage.postgres.statementTimeoutMs +
// 10 s, for a server that stopped answering), then comes back: a failover proxy's pause, a VM or
// link hiccup. The write gave up ("Query read timeout"), pg-copy-streams let go of the
// connection, yet the COPY stayed the connection's active query, and what the server sent once
// the network was back went to it: a TypeError thrown from the socket's data event, which ended
// the collector's process.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/postgres.ts';
import { postgresBackend as backend, spanBatch } from '../helpers/postgres-store.ts';
import { makeSpan } from '../helpers/rows.ts';

/** A TCP relay to PostgreSQL that holds the server's answers from the first COPY on until resumed. */
function stallingRelay(target: URL): { server: Server; resume(): void } {
  let holding = false;
  const held: { to: Socket; data: Buffer }[] = [];
  const server = createServer((client) => {
    const up = connect(Number(target.port), target.hostname);
    client.on('data', (d: Buffer) => {
      if (d.includes('COPY pg_temp')) holding = true;
      up.write(d);
    });
    up.on('data', (d: Buffer) => (holding ? held.push({ to: client, data: d }) : client.write(d)));
    for (const [a, b] of [[client, up], [up, client]] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  return {
    server,
    resume() {
      holding = false;
      for (const h of held.splice(0)) if (!h.to.destroyed) h.to.write(h.data);
    },
  };
}

describe('postgres: a network stall during a COPY that ends after the write gave up', () => {
  let url: string;
  let relay: ReturnType<typeof stallingRelay>;
  const uncaught: string[] = [];
  const note = (err: unknown): void => {
    uncaught.push(String(err));
  };

  beforeAll(async () => {
    url = await createTestDatabase('pgcopystall');
    relay = stallingRelay(new URL(url));
    await new Promise<void>((r) => relay.server.listen(0, '127.0.0.1', () => r()));
    process.on('uncaughtException', note);
  });
  afterAll(() => {
    process.off('uncaughtException', note);
    relay?.server.close();
  });

  it('answers the write retryable and keeps the process up when the answers arrive late', { timeout: 60_000 }, async () => {
    const via = new URL(url);
    via.host = `127.0.0.1:${(relay.server.address() as AddressInfo).port}`;
    const store = backend(via.toString(), { 'storage.postgres.statementTimeoutMs': '100' });
    await store.start();
    try {
      const pending = store.write(spanBatch([makeSpan()]));
      // The COPY's client-side bound is 100 ms + 10 s: the network comes back after it.
      await new Promise((r) => setTimeout(r, 11_000));
      relay.resume();
      const r = await pending;
      expect(r.kind === 'success' ? 'success' : r.kind).toBe('retryable');
      await new Promise((res) => setTimeout(res, 1_000));
      expect(uncaught).toEqual([]);
    } finally {
      await store.shutdown();
    }
  });
});

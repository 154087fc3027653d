// A long-running collector's gRPC health service under churn: Watch calls that come and go, each
// for a service name of the caller's choosing (health is open to anyone, token or not), must not
// leave anything behind once they are cancelled.
import * as grpc from '@grpc/grpc-js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { startCollector } from '../helpers/collector.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapUsed = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

/** A grpc.health.v1.HealthCheckRequest naming `service`. */
function healthRequest(service: string): Buffer {
  const name = Buffer.from(service);
  const length: number[] = [];
  for (let n = name.length; ; n >>>= 7) {
    if (n < 128) {
      length.push(n);
      break;
    }
    length.push((n & 127) | 128);
  }
  return Buffer.concat([Buffer.from([0x0a, ...length]), name]);
}

/** Opens a Watch for `service`, waits for its first status, then cancels it; resolves to that status. */
function watchOnce(client: grpc.Client, service: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const call = client.makeServerStreamRequest('/grpc.health.v1.Health/Watch', (a: Buffer) => a, (b: Buffer) => b, healthRequest(service));
    call.on('error', (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) reject(err);
    });
    call.once('data', (b: Buffer) => {
      call.cancel();
      resolve(b.length >= 2 ? b[1]! : 0);
    });
  });
}

describe('gRPC health Watch churn', () => {
  it('holds nothing for a Watch of an unknown service once it is cancelled', async () => {
    const c = await startCollector();
    const client = new grpc.Client(c.grpcAddress, grpc.credentials.createInsecure());
    try {
      // Names of 32 KiB (health and reflection calls may send up to 64 KiB): what a cycle would
      // leave behind is far above the heap's noise.
      const cycle = async (k: number): Promise<void> => {
        for (let i = 0; i < 200; i += 20) {
          const statuses = await Promise.all(Array.from({ length: 20 }, (_, j) => watchOnce(client, `svc-${k}-${i + j}-` + 'x'.repeat(32 * 1024))));
          // SERVICE_UNKNOWN (3), as grpc.health.v1 answers a service it does not know.
          expect(new Set(statuses)).toEqual(new Set([3]));
        }
      };
      await cycle(0);
      const before = heapUsed();
      for (let k = 1; k <= 3; k++) await cycle(k);
      // Let the cancellations reach the server.
      await new Promise((r) => setTimeout(r, 200));
      const grown = heapUsed() - before;
      // 600 cancelled watches of 32 KiB names: ~19 MiB if each name were kept.
      expect(grown).toBeLessThan(4 * 1024 * 1024);
      // The known services are still watched as before.
      expect(await watchOnce(client, '')).toBe(1);
    } finally {
      client.close();
      await c.stop();
    }
  }, 20_000);
});

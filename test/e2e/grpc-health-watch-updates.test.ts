// grpc.health.v1 Watch: "The server will immediately send back a message indicating the current
// serving status. It will then subsequently send a new message whenever the service's serving
// status changes." The receiver set the status on each readiness poll (every second), and
// grpc-health-check passes every status set on to every watcher: a Watch stream heard SERVING
// once a second for as long as it stayed open, from every collector a client watches.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type TestCollector } from '../helpers/collector.ts';

const health = (grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true, enums: String })) as any).grpc.health.v1.Health as typeof grpc.Client;

describe('gRPC health Watch', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector();
  });
  afterAll(async () => c?.stop());

  it('sends the status once, then only when it changes, not on every readiness poll', async () => {
    const client = new health(c.grpcAddress, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
    const seen: string[] = [];
    const call = client['Watch']({ service: '' }) as grpc.ClientReadableStream<{ status: string }>;
    call.on('data', (m: { status: string }) => seen.push(m.status));
    call.on('error', () => {});
    try {
      // Over three readiness polls (one a second) of a collector that stays ready.
      await new Promise((r) => setTimeout(r, 3500));
      expect(seen).toEqual(['SERVING']);
    } finally {
      call.cancel();
      client.close();
    }
  });
});

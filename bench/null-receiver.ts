// The transport baseline: a gRPC server on the OTLP export paths (grpc-js, identity
// deserializer and HTTP/2 receive windows exactly as our receiver sets them up) and an HTTP
// server on /v1/traces and /v1/logs that read each request into one buffer and acknowledge it
// without decoding. Whatever rate the load generator reaches against it is the most any
// receiver built on the same stacks can accept on this machine.
//
// Run as a process of its own: `node bench/null-receiver.ts` prints one JSON line with its ports
// and runs until SIGTERM, when it prints what it received.
import * as grpc from '@grpc/grpc-js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config/index.ts';
import { tuneGrpcSessions } from '../src/receiver/http2-sessions.ts';

const identity = (b: Buffer): Buffer => b;
const EMPTY = Buffer.alloc(0);

export interface NullReceiver {
  grpcPort: number;
  httpPort: number;
  requests: number;
  bytes: number;
  shutdown(): Promise<void>;
}

/** Starts both null servers on 127.0.0.1 ephemeral ports (or the ones given). */
export async function startNullReceiver(grpcPort = 0, httpPort = 0): Promise<NullReceiver> {
  const state = { requests: 0, bytes: 0 };
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  const handler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    state.requests++;
    state.bytes += call.request.byteLength;
    callback(null, EMPTY);
  };
  const method = (path: string): grpc.MethodDefinition<Buffer, Buffer> => ({
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  });
  server.addService({ Export: method('/opentelemetry.proto.collector.trace.v1.TraceService/Export') }, { Export: handler });
  server.addService({ Export: method('/opentelemetry.proto.collector.logs.v1.LogsService/Export') }, { Export: handler });
  const boundGrpc = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );

  // The receiver's default windows; its streams are not charged to any queue (no watcher).
  const defaults = loadConfig();
  const stopTuning = tuneGrpcSessions(() => boundGrpc, { streamBytes: defaults['receiver.grpc.streamWindowBytes'], connectionBytes: defaults['receiver.grpc.connectionWindowBytes'] }, () => {});

  const httpServer: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      total += c.byteLength;
    });
    req.on('end', () => {
      // One contiguous body, as a real receiver needs before handing it on.
      const body = Buffer.allocUnsafe(total);
      let at = 0;
      for (const c of chunks) {
        body.set(c, at);
        at += c.byteLength;
      }
      state.requests++;
      state.bytes += body.byteLength;
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
      res.end();
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(httpPort, '127.0.0.1', resolve));

  return {
    grpcPort: boundGrpc,
    httpPort: (httpServer.address() as AddressInfo).port,
    get requests() {
      return state.requests;
    },
    get bytes() {
      return state.bytes;
    },
    async shutdown() {
      stopTuning();
      httpServer.closeAllConnections();
      await Promise.all([new Promise<void>((r) => httpServer.close(() => r())), new Promise<void>((r) => server.tryShutdown(() => r()))]);
    },
  };
}

if (import.meta.main) {
  const nr = await startNullReceiver();
  process.stdout.write(JSON.stringify({ msg: 'null receiver listening', grpcPort: nr.grpcPort, httpPort: nr.httpPort }) + '\n');
  process.on('SIGTERM', () => {
    process.stdout.write(JSON.stringify({ msg: 'null receiver stopped', requests: nr.requests, bytes: nr.bytes }) + '\n');
    nr.shutdown().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

// The transport baseline: a gRPC server on the OTLP export paths (grpc-js, identity
// deserializer and HTTP/2 receive windows exactly as our receiver sets them up) and an HTTP
// server on /v1/traces and /v1/logs that read each request into one buffer and acknowledge it
// without decoding. Whatever rate the load generator reaches against it is the most any
// receiver built on the same stacks can accept on this machine.
//
// Run as a process of its own: `node bench/null-receiver.ts [--grpc-stack=node-http2]` prints
// one JSON line with its ports and runs until SIGTERM, when it prints what it received.
//
// --grpc-stack=node-http2 serves the gRPC side on Node's HTTP/2 server without grpc-js: each
// call's DATA read into one buffer (the message with its 5-byte gRPC prefix), answered with an
// empty message and grpc-status 0 in trailers, on the same windows. What it saves against
// grpc-js is what grpc-js's server costs per call (bench/transport-floor.ts measures the two).
import * as grpc from '@grpc/grpc-js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
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

/** The gRPC stack the null receiver's gRPC side runs on. */
export type GrpcStack = 'grpc-js' | 'node-http2';

const EXPORT_PATHS = new Set(['/opentelemetry.proto.collector.trace.v1.TraceService/Export', '/opentelemetry.proto.collector.logs.v1.LogsService/Export']);
/** An empty Export response: uncompressed, length 0. */
const EMPTY_MESSAGE = Buffer.alloc(5);

/** Reads a stream's DATA into one buffer, then calls done with it. */
function readWhole(stream: NodeJS.ReadableStream, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let total = 0;
  stream.on('data', (c: Buffer) => {
    chunks.push(c);
    total += c.byteLength;
  });
  stream.on('end', () => {
    // One contiguous body, as a real receiver needs before handing it on.
    const body = Buffer.allocUnsafe(total);
    let at = 0;
    for (const c of chunks) {
      body.set(c, at);
      at += c.byteLength;
    }
    done(body);
  });
}

/** The gRPC side on node:http2 alone, with the receiver's windows; resolves to its port and its closer. */
async function startHttp2Grpc(port: number, windows: { streamBytes: number; connectionBytes: number }, state: { requests: number; bytes: number }): Promise<{ port: number; close(): Promise<void> }> {
  const server: Http2Server = createHttp2Server({ settings: { initialWindowSize: windows.streamBytes } });
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.setLocalWindowSize(windows.connectionBytes);
  });
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    // A client that goes away resets its streams: that ends the call, not the receiver.
    stream.on('error', () => {});
    if (!EXPORT_PATHS.has(headers[':path'] ?? '')) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
      return;
    }
    readWhole(stream, (body) => {
      state.requests++;
      state.bytes += Math.max(0, body.byteLength - 5);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(EMPTY_MESSAGE);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      // Clients keep their connections open: close them, or the server never closes.
      for (const session of sessions) session.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Starts both null servers on 127.0.0.1 ephemeral ports (or the ones given). */
export async function startNullReceiver(grpcPort = 0, httpPort = 0, stack: GrpcStack = 'grpc-js'): Promise<NullReceiver> {
  const state = { requests: 0, bytes: 0 };
  // The receiver's default windows; its streams are not charged to any queue (no watcher).
  const defaults = loadConfig();
  const windows = { streamBytes: defaults['receiver.grpc.streamWindowBytes'], connectionBytes: defaults['receiver.grpc.connectionWindowBytes'] };
  if (stack === 'node-http2') return withHttp(await startHttp2Grpc(grpcPort, windows, state), httpPort, state);
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

  const stopTuning = tuneGrpcSessions(() => boundGrpc, windows, () => {});
  return withHttp(
    {
      port: boundGrpc,
      close: () => {
        stopTuning();
        return new Promise<void>((r) => server.tryShutdown(() => r()));
      },
    },
    httpPort,
    state,
  );
}

/** Adds the HTTP null server to a running gRPC side: the null receiver both make. */
async function withHttp(grpcSide: { port: number; close(): Promise<void> }, httpPort: number, state: { requests: number; bytes: number }): Promise<NullReceiver> {
  const httpServer: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    readWhole(req, (body) => {
      state.requests++;
      state.bytes += body.byteLength;
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
      res.end();
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(httpPort, '127.0.0.1', resolve));

  return {
    grpcPort: grpcSide.port,
    httpPort: (httpServer.address() as AddressInfo).port,
    get requests() {
      return state.requests;
    },
    get bytes() {
      return state.bytes;
    },
    async shutdown() {
      httpServer.closeAllConnections();
      await Promise.all([new Promise<void>((r) => httpServer.close(() => r())), grpcSide.close()]);
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { 'grpc-stack': { type: 'string', default: 'grpc-js' } } });
  const stack = values['grpc-stack'];
  if (stack !== 'grpc-js' && stack !== 'node-http2') {
    process.stderr.write(`bench/null-receiver.ts: --grpc-stack must be grpc-js or node-http2, not ${JSON.stringify(stack)}\n`);
    process.exit(2);
  }
  const nr = await startNullReceiver(0, 0, stack);
  process.stdout.write(JSON.stringify({ msg: 'null receiver listening', grpcPort: nr.grpcPort, httpPort: nr.httpPort }) + '\n');
  process.on('SIGTERM', () => {
    process.stdout.write(JSON.stringify({ msg: 'null receiver stopped', requests: nr.requests, bytes: nr.bytes }) + '\n');
    nr.shutdown().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

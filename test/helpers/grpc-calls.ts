// OTLP/gRPC Export calls by hand over node:http2, for tests of what grpc-js's clients never send:
// a message that never all arrives, one over the size limit, a frame at a time.
import { randomBytes } from 'node:crypto';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import { encodeTraces } from './otlp-proto.ts';

/** One Export message with its gRPC frame header, about `bytes` long. */
export function framed(bytes: number): Buffer {
  const span = { traceId: randomBytes(16), spanId: randomBytes(8), name: 'x'.repeat(bytes), startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' };
  const message = encodeTraces({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.byteLength, 1);
  return Buffer.concat([prefix, message]);
}

/** Opens an Export call; `status` resolves to its gRPC status (undefined when none came) once the stream closes. */
export function exportCall(session: ClientHttp2Session, headers: Record<string, string> = {}): { stream: ClientHttp2Stream; status: Promise<number | undefined> } {
  const stream = session.request({ ':method': 'POST', ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export', 'content-type': 'application/grpc', te: 'trailers', ...headers });
  stream.on('error', () => {});
  const status = new Promise<number | undefined>((resolve) => {
    let code: number | undefined;
    const note = (h: Record<string, unknown>): void => {
      if (h['grpc-status'] !== undefined) code = Number(h['grpc-status']);
    };
    stream.on('response', note);
    stream.on('trailers', note);
    stream.resume();
    stream.on('close', () => resolve(code));
  });
  return { stream, status };
}

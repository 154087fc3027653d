// The gRPC receiver's HTTP/2 sessions, tuned where grpc-js has no option for it.
//
// Flow-control windows. grpc-js leaves a server's receive windows at the protocol's default of
// 64 KiB per stream and per connection, and has no option to raise them (grpc-node issue #2429,
// pull request #3058). A client may then send 64 KiB of a request before waiting a round trip for
// the server's WINDOW_UPDATE, shared by every call on the connection: a 250 KiB export crosses
// the loopback in many small reads and wake-ups. grpc-go sizes its windows from the measured
// bandwidth-delay product, up to 16 MiB.
//
// Each session of the server is widened when its first stream arrives (Node's public
// 'http2.server.stream.created' diagnostics channel; grpc-js keeps its sessions to itself): the
// connection window with setLocalWindowSize, the stream window with a SETTINGS frame, which
// applies to the streams already open too. What a client may send unread grows to the windows;
// what the receiver buffers is bounded by admission at the headers
// (receiver.grpc.maxReceivingCalls), the message size limit, and the queue budget each call's
// bytes are charged to as they arrive (the receiver's onStream, below), since grpc-js reads every
// admitted message whole anyway.
//
// Refusals. A call answered at its headers (refused) leaves the rest of its request to be read
// and discarded by Node: a refused export still crossed the network whole. Its stream is reset
// with NO_ERROR once the answer is sent, which tells the client to stop sending.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';

const STREAM_CREATED = 'http2.server.stream.created';

/** The receive windows a gRPC server's sessions get. */
export interface FlowControlWindows {
  /** Bytes one call may send before the server's WINDOW_UPDATE (SETTINGS_INITIAL_WINDOW_SIZE). */
  streamBytes: number;
  /** Bytes all calls of a connection together may send before it. */
  connectionBytes: number;
}

/**
 * What sees each stream of the server as it is created, before grpc-js does: its headers may be
 * changed (grpc-js makes the call's metadata from them), and the stream may be read alongside
 * grpc-js's own reading.
 */
export type StreamWatcher = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

/**
 * Widens the receive windows of every HTTP/2 server session accepted on local port `port()` (the
 * gRPC server's: the process serves no other HTTP/2), hands each of its streams to onStream, and
 * resets the streams of calls answered before their request ended. Returns the function that
 * stops all three.
 */
export function tuneGrpcSessions(port: () => number, windows: FlowControlWindows, onStream: StreamWatcher): () => void {
  /** Sessions seen, and whether they are the server's (widened). */
  const seen = new WeakMap<object, boolean>();
  const ours = (session: ServerHttp2Stream['session']): boolean => {
    if (session === undefined) return false;
    let mine = seen.get(session);
    if (mine !== undefined) return mine;
    mine = false;
    try {
      if (!session.destroyed && !session.closed && session.socket.localPort === port()) {
        session.setLocalWindowSize(windows.connectionBytes);
        session.settings({ initialWindowSize: windows.streamBytes });
        mine = true;
      }
    } catch {
      // A session closing meanwhile keeps the default windows: it is slower, not wrong (and a
      // subscriber's exception would surface as an uncaught one).
    }
    seen.set(session, mine);
    return mine;
  };
  const onCreated = (message: unknown): void => {
    const { stream, headers } = message as { stream: ServerHttp2Stream; headers: IncomingHttpHeaders };
    if (!ours(stream.session)) return;
    onStream(stream, headers);
    // A unary call is answered once its request is read, so a response that ends first is a
    // refusal: RST_STREAM(NO_ERROR) after a complete response tells the client to stop sending
    // (RFC 9113, section 8.1) and keeps the answer it has.
    stream.once('finish', () => {
      if (stream.readableEnded || stream.destroyed) return;
      // A call grpc-js answered without reading it (UNIMPLEMENTED for a method not served, such
      // as MetricsService/Export) is still paused by the watcher: its unread bytes would keep the
      // stream open, counted against maxConcurrentStreams, until the connection closes.
      stream.resume();
      stream.close(constants.NGHTTP2_NO_ERROR);
    });
  };
  subscribe(STREAM_CREATED, onCreated);
  return () => unsubscribe(STREAM_CREATED, onCreated);
}

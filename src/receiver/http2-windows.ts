// HTTP/2 flow-control windows for the gRPC receiver. grpc-js leaves a server's receive windows at
// the protocol's default of 64 KiB per stream and per connection, and has no option to raise them
// (grpc-node issue #2429, pull request #3058). A client may then send 64 KiB of a request before
// waiting a round trip for the server's WINDOW_UPDATE, shared by every call on the connection:
// a 250 KiB export crosses the loopback in many small reads and wake-ups. grpc-go sizes its
// windows from the measured bandwidth-delay product, up to 16 MiB.
//
// Each session of the server is widened when its first stream arrives (Node's public
// 'http2.server.stream.created' diagnostics channel; grpc-js keeps its sessions to itself): the
// connection window with setLocalWindowSize, the stream window with a SETTINGS frame, which
// applies to the streams already open too. What a client may send unread grows to the windows;
// what the receiver buffers is bounded as before, by admission at the headers
// (receiver.grpc.maxReceivingCalls) and the message size limit, since grpc-js reads every
// admitted message whole anyway.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ServerHttp2Stream } from 'node:http2';

const STREAM_CREATED = 'http2.server.stream.created';

/** The receive windows a gRPC server's sessions get. */
export interface FlowControlWindows {
  /** Bytes one call may send before the server's WINDOW_UPDATE (SETTINGS_INITIAL_WINDOW_SIZE). */
  streamBytes: number;
  /** Bytes all calls of a connection together may send before it. */
  connectionBytes: number;
}

/**
 * Widens the receive windows of every HTTP/2 server session accepted on local port `port()` (the
 * gRPC server's: the process serves no other HTTP/2). Returns the function that stops it.
 */
export function widenFlowControl(port: () => number, windows: FlowControlWindows): () => void {
  const widened = new WeakSet<object>();
  const onStream = (message: unknown): void => {
    const session = (message as { stream: ServerHttp2Stream }).stream.session;
    if (session === undefined || widened.has(session)) return;
    widened.add(session);
    try {
      if (session.destroyed || session.closed || session.socket.localPort !== port()) return;
      session.setLocalWindowSize(windows.connectionBytes);
      session.settings({ initialWindowSize: windows.streamBytes });
    } catch {
      // A session closing meanwhile keeps the default windows: it is slower, not wrong (and a
      // subscriber's exception would surface as an uncaught one).
    }
  };
  subscribe(STREAM_CREATED, onStream);
  return () => unsubscribe(STREAM_CREATED, onStream);
}

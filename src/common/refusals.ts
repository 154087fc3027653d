// One catalogue of refusals (fastify lib/errors.js): why a request is refused, what each
// transport answers, and the message. The reasons are also the only values the
// tracehouse_receiver_refused_requests_total `reason` label takes.

/** gRPC status codes (the numbers of grpc-js's `status`), also carried in google.rpc.Status bodies. */
export const GRPC_CODE = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  PERMISSION_DENIED: 7,
  UNAUTHENTICATED: 16,
} as const;

/** How long clients are asked to wait before retrying a retryable refusal. */
export const RETRY_AFTER_MS = 1000;

interface Refusal {
  http: number;
  grpc: number;
  /** Retryable refusals carry Retry-After / RetryInfo; OTLP clients retry them. */
  retryable: boolean;
  /** Counted as a refused export; false for requests that were never exports (a wrong path). */
  counted: boolean;
  /** The message when the caller has no more precise one. */
  message: string;
}

export const REFUSALS = {
  queue_full: { http: 503, grpc: GRPC_CODE.UNAVAILABLE, retryable: true, counted: true, message: 'the write queue is full' },
  shutting_down: { http: 503, grpc: GRPC_CODE.UNAVAILABLE, retryable: true, counted: true, message: 'the collector is shutting down' },
  // Nothing is answered: the connection is closed as it opens (cheap under a flood); counted per connection.
  connections_per_client: { http: 503, grpc: GRPC_CODE.UNAVAILABLE, retryable: true, counted: true, message: 'too many open connections from one client address' },
  // Nothing is answered: a connection with more requests pipelined than MAX_PIPELINED_REQUESTS is closed; counted per connection.
  pipelined: { http: 503, grpc: GRPC_CODE.UNAVAILABLE, retryable: true, counted: true, message: 'too many requests pipelined on one connection' },
  receivers_busy: { http: 503, grpc: GRPC_CODE.UNAVAILABLE, retryable: true, counted: true, message: 'too many requests are arriving at once' },
  workers_busy: { http: 503, grpc: GRPC_CODE.UNAVAILABLE, retryable: true, counted: true, message: 'every decode worker is busy' },
  worker_failed: { http: 503, grpc: GRPC_CODE.UNAVAILABLE, retryable: true, counted: true, message: 'decoding failed on the server; retry' },
  memory_limited: { http: 503, grpc: GRPC_CODE.UNAVAILABLE, retryable: true, counted: true, message: 'memory is over the soft limit' },
  wal_full: { http: 503, grpc: GRPC_CODE.UNAVAILABLE, retryable: true, counted: true, message: 'the write-ahead log is full; the store is behind' },
  wal_unavailable: { http: 503, grpc: GRPC_CODE.UNAVAILABLE, retryable: true, counted: true, message: 'the write-ahead log cannot write to disk' },
  not_stored: { http: 503, grpc: GRPC_CODE.UNAVAILABLE, retryable: true, counted: true, message: 'the rows could not be stored; retry' },
  rejected_by_store: { http: 500, grpc: GRPC_CODE.INTERNAL, retryable: false, counted: true, message: 'the store refused the rows for good; sending them again would not store them' },
  undecodable: { http: 400, grpc: GRPC_CODE.INVALID_ARGUMENT, retryable: false, counted: true, message: 'the request could not be decoded' },
  bad_encoding: { http: 400, grpc: GRPC_CODE.INVALID_ARGUMENT, retryable: false, counted: true, message: 'the compressed body could not be inflated' },
  too_large: { http: 413, grpc: GRPC_CODE.RESOURCE_EXHAUSTED, retryable: false, counted: true, message: 'the request is over the size limit' },
  timeout: { http: 408, grpc: GRPC_CODE.DEADLINE_EXCEEDED, retryable: false, counted: true, message: 'the request body did not arrive in time' },
  unsupported_media_type: { http: 415, grpc: GRPC_CODE.INVALID_ARGUMENT, retryable: false, counted: true, message: 'unsupported Content-Type; use application/x-protobuf or application/json' },
  unsupported_encoding: { http: 415, grpc: GRPC_CODE.UNIMPLEMENTED, retryable: false, counted: true, message: 'unsupported Content-Encoding; use gzip, deflate, zstd or identity' },
  client_aborted: { http: 400, grpc: GRPC_CODE.INVALID_ARGUMENT, retryable: false, counted: true, message: 'the client went away before sending the whole body' },
  target_too_long: { http: 414, grpc: GRPC_CODE.INVALID_ARGUMENT, retryable: false, counted: false, message: 'the request target is too long' },
  not_found: { http: 404, grpc: GRPC_CODE.NOT_FOUND, retryable: false, counted: false, message: 'no OTLP endpoint here; use /v1/traces or /v1/logs' },
  method_not_allowed: { http: 405, grpc: GRPC_CODE.UNIMPLEMENTED, retryable: false, counted: false, message: 'method not allowed; use POST' },
  unauthenticated: { http: 401, grpc: GRPC_CODE.UNAUTHENTICATED, retryable: false, counted: true, message: 'a valid bearer token is required (Authorization: Bearer <token>)' },
  forbidden: { http: 403, grpc: GRPC_CODE.PERMISSION_DENIED, retryable: false, counted: true, message: 'the bearer token does not have the ingest scope' },
  // A CORS preflight from an origin not in receiver.http.corsAllowedOrigins: answered without CORS headers, so the browser never sends the export.
  origin_not_allowed: { http: 403, grpc: GRPC_CODE.PERMISSION_DENIED, retryable: false, counted: true, message: 'the page\'s origin is not in receiver.http.corsAllowedOrigins' },
  foreign_host: { http: 403, grpc: GRPC_CODE.PERMISSION_DENIED, retryable: false, counted: true, message: 'the request names another host than this machine on a loopback listener' },
  internal: { http: 500, grpc: GRPC_CODE.INTERNAL, retryable: false, counted: true, message: 'internal error' },
} as const satisfies Record<string, Refusal>;

export type RefusalReason = keyof typeof REFUSALS;

/** Every reason that is counted as a refused export (for pre-initialising the metric). */
export const COUNTED_REASONS = (Object.keys(REFUSALS) as RefusalReason[]).filter((r) => REFUSALS[r].counted);

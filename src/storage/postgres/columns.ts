// The columns the encoder writes, in COPY order, shared by the encoder (worker threads), the
// migrations and the write path. The partition key comes first so the adapter can read each
// tuple's day from the encoded bytes without decoding the rest.
//
// Structured values (resource, scope, attributes, events, links, log bodies) are json, not jsonb:
// json keeps the text exactly as the encoder wrote it (every AnyValue type, even \u0000 escapes)
// and costs PostgreSQL a validation pass instead of a jsonb build, half the server CPU per span.
// Attribute search goes through attr_tokens (tokens.ts).

export const SPAN_COLUMNS = [
  ['start_time_unix_nano', 'int8'],
  ['trace_id', 'bytea'],
  ['span_id', 'bytea'],
  ['parent_span_id', 'bytea'],
  ['trace_state', 'text'],
  ['flags', 'int8'],
  ['name', 'text'],
  ['kind', 'int4'],
  ['end_time_unix_nano', 'int8'],
  ['duration_nano', 'int8'],
  ['status_code', 'int4'],
  ['status_message', 'text'],
  ['service_name', 'text'],
  ['resource', 'json'],
  ['scope', 'json'],
  ['attributes', 'json'],
  ['attr_tokens', 'int8[]'],
  ['dropped_attributes_count', 'int8'],
  ['events', 'json'],
  ['dropped_events_count', 'int8'],
  ['links', 'json'],
  ['dropped_links_count', 'int8'],
] as const;

/**
 * ts_unix_nano is the record's time, or its observed time when the time is unset (0): it is the
 * partition key, so records without a time still age out with retention.
 */
export const LOG_COLUMNS = [
  ['ts_unix_nano', 'int8'],
  ['time_unix_nano', 'int8'],
  ['observed_time_unix_nano', 'int8'],
  ['trace_id', 'bytea'],
  ['span_id', 'bytea'],
  ['flags', 'int8'],
  ['severity_number', 'int4'],
  ['severity_text', 'text'],
  ['body', 'json'],
  ['event_name', 'text'],
  ['service_name', 'text'],
  ['resource', 'json'],
  ['scope', 'json'],
  ['attributes', 'json'],
  ['dropped_attributes_count', 'int8'],
] as const;

export type CopyFormat = 'binary' | 'text';

/** Column definitions for CREATE TABLE. */
export function columnDefs(cols: readonly (readonly [string, string])[]): string {
  return cols.map(([n, t]) => `${n} ${t} NOT NULL`).join(',\n  ');
}

/** Column names, comma-separated. */
export function columnList(cols: readonly (readonly [string, string])[]): string {
  return cols.map(([n]) => n).join(', ');
}

/** COPY binary file header: signature, flags, header extension length. */
export const BINARY_HEADER = Uint8Array.from([
  0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0,
]);
/** COPY binary file trailer: a field count of -1. */
export const BINARY_TRAILER = Uint8Array.from([0xff, 0xff]);

export const NS_PER_DAY = 86_400_000_000_000n;

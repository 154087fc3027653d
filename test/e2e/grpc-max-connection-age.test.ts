// receiver.grpc.maxConnectionAgeMs: grpc-js arms each connection's timer at the age plus up to
// 10 % jitter, and Node fires a delay longer than 2^31 - 1 ms after 1 ms. An age the
// configuration accepted (up to 2^31 - 1) above ~22.6 days closed a share of the connections as
// soon as they opened (GOAWAY within milliseconds): clients reconnecting over and over. Such an
// age is refused at start-up now, naming key and value; the longest accepted keeps connections open.
import { connect } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { OPTIONS } from '../../src/config/options.ts';
import { startCollector } from '../helpers/collector.ts';

const DAY_MS = 86_400_000;

/** How many of `n` new HTTP/2 connections to the gRPC port are told GOAWAY within `ms`. */
async function closedAtOnce(grpcAddress: string, n: number, ms: number): Promise<number> {
  let closed = 0;
  const sessions = Array.from({ length: n }, () => {
    const s = connect(`http://${grpcAddress}`);
    s.once('goaway', () => closed++);
    s.on('error', () => undefined);
    return s;
  });
  await new Promise((r) => setTimeout(r, ms));
  const seen = closed;
  for (const s of sessions) s.destroy();
  return seen;
}

describe('receiver.grpc.maxConnectionAgeMs', () => {
  it('refuses an age whose jittered timer would pass the longest timer (24 days), naming key and value', () => {
    const age = String(24 * DAY_MS);
    expect(() => loadConfig({ flags: { 'receiver.grpc.maxConnectionAgeMs': age } })).toThrow(ConfigError);
    expect(() => loadConfig({ flags: { 'receiver.grpc.maxConnectionAgeMs': age } })).toThrow(`receiver.grpc.maxConnectionAgeMs = "${age}"`);
  });

  it('keeps new connections open at the longest age it accepts', async () => {
    const type = OPTIONS.find((o) => o.key === 'receiver.grpc.maxConnectionAgeMs')!.type;
    const longest = 'max' in type && type.max !== undefined ? type.max : 2 ** 31 - 1;
    // Below grpc-js's "unlimited" (2^31 - 1), so the age timer is armed.
    const age = Math.min(longest, 2 ** 31 - 2);
    const c = await startCollector({ 'receiver.grpc.maxConnectionAgeMs': String(age) });
    try {
      expect(await closedAtOnce(c.grpcAddress, 30, 700)).toBe(0);
    } finally {
      await c.stop();
    }
  });
});

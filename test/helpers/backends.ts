// Real backends with a switch in front, for tests of what the pipeline does when storage
// stalls or fails. The rows still end up in the real backend behind.
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.ts';
import type { StorageBackend, WriteBatch, WriteResult } from '../../src/storage/backend.ts';
import { createMemoryBackend } from '../../src/storage/memory/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { memoryOptions } from '../../src/storage/index.ts';

/** A started memory backend. */
export async function memoryBackend(flags: Record<string, string> = {}): Promise<StorageBackend> {
  const b = createMemoryBackend(memoryOptions(loadConfig({ flags: { 'storage.backend': 'memory', ...flags } })), { logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await b.start();
  return b;
}

export interface Gate {
  backend: StorageBackend;
  /** Writes wait while closed. */
  close(): void;
  open(): void;
  /** The next n writes answer this result instead of writing. */
  failNext(n: number, result: WriteResult): void;
  attempts: number;
}

/** Wraps a backend so a test can stall writes or make them fail. */
export function gated(inner: StorageBackend): Gate {
  let release: (() => void) | undefined;
  let blocked: Promise<void> | undefined;
  let failures = 0;
  let failure: WriteResult = { kind: 'success' };
  const gate: Gate = {
    attempts: 0,
    close() {
      blocked ??= new Promise((r) => (release = r));
    },
    open() {
      release?.();
      blocked = undefined;
    },
    failNext(n, result) {
      failures = n;
      failure = result;
    },
    backend: Object.create(inner, {
      write: { value: (b: WriteBatch) => through(b, () => inner.write(b)) },
    }),
  };
  async function through(_b: WriteBatch, write: () => Promise<WriteResult>): Promise<WriteResult> {
    gate.attempts++;
    while (blocked) await blocked;
    if (failures > 0) {
      failures--;
      return failure;
    }
    return write();
  }
  return gate;
}

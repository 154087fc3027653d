// The OTLP payloads in test/fixtures/: protobuf requests (*.bin, read as traces or logs) and the
// OTLP/JSON trace requests in http/ (*.json).
import { readdirSync, readFileSync } from 'node:fs';

const FIXTURES = new URL('../fixtures/', import.meta.url);

/** One fixture's bytes, by its path under test/fixtures/. */
export function fixtureBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(name, FIXTURES)));
}

/** The names of the protobuf fixtures (*.bin). */
export function protobufFixtures(): string[] {
  return readdirSync(FIXTURES).filter((n) => n.endsWith('.bin'));
}

/** The paths of the OTLP/JSON fixtures (http/*.json). */
export function jsonFixtures(): string[] {
  return readdirSync(new URL('http/', FIXTURES))
    .filter((n) => n.endsWith('.json'))
    .map((n) => `http/${n}`);
}

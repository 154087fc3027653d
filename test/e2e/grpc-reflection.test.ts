// Server reflection serves descriptors that reflection clients can build (grpcurl describe and
// calls, grpcui, Postman), not only list: each file names the files it imports, type names are
// fully qualified, map entries and reserved ranges are as protoc writes them.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, startCollector, type TestCollector } from '../helpers/collector.ts';

const SYMBOLS = ['opentelemetry.proto.collector.trace.v1.TraceService', 'opentelemetry.proto.collector.logs.v1.LogsService', 'grpc.health.v1.Health'];

/** The file descriptors reflection (grpc.reflection.v1) answers for a symbol: the file holding it and those it needs. */
async function filesFor(address: string, symbol: string): Promise<any[]> {
  const def = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [fileURLToPath(new URL('../../node_modules/@grpc/reflection/build/proto/', import.meta.url))] });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  try {
    return await new Promise<any[]>((resolve, reject) => {
      const call = client.ServerReflectionInfo();
      call.on('data', (r: any) => {
        if (r.errorResponse) reject(new Error(r.errorResponse.errorMessage));
        else resolve(r.fileDescriptorResponse.fileDescriptorProto.map((b: Buffer) => (descriptor as any).FileDescriptorProto.toObject((descriptor as any).FileDescriptorProto.decode(b))));
        call.end();
      });
      call.on('error', reject);
      call.write({ fileContainingSymbol: symbol });
    });
  } finally {
    client.close();
  }
}

/** Every message of a file with its full name, nested ones too. */
function messages(file: any): [string, any][] {
  const out: [string, any][] = [];
  const walk = (scope: string, m: any): void => {
    out.push([`${scope}.${m.name}`, m]);
    for (const n of m.nestedType ?? []) walk(`${scope}.${m.name}`, n);
  };
  for (const m of file.messageType ?? []) walk(`.${file.package}`, m);
  return out;
}

/** grpcurl's output (the collector runs in this process: the call must not block it). */
const grpcurl = async (...args: string[]): Promise<string> => (await promisify(execFile)('grpcurl', ['-plaintext', ...args], { encoding: 'utf8' })).stdout;

describe('OTLP/gRPC server reflection', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startCollector();
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('serves whole descriptors: imports listed, type names fully qualified and defined in the file or one it imports, map entries and reserved ranges as protoc writes them', async () => {
    for (const symbol of SYMBOLS) {
      const files = await filesFor(c.grpcAddress, symbol);
      const defined = new Map<string, string>();
      for (const f of files) {
        for (const [name] of messages(f)) defined.set(name, f.name);
        for (const e of f.enumType ?? []) defined.set(`.${f.package}.${e.name}`, f.name);
        for (const [name, m] of messages(f)) for (const e of m.enumType ?? []) defined.set(`${name}.${e.name}`, f.name);
      }
      for (const f of files) {
        const refs: string[] = [];
        for (const [, m] of messages(f)) {
          for (const field of m.field ?? []) if (field.typeName) refs.push(field.typeName);
          for (const n of m.nestedType ?? []) {
            if (n.options?.mapEntry) expect(m.field.some((field: any) => field.typeName?.endsWith(`.${n.name}`) && n.name === field.name.replace(/(?:^|_)([a-z0-9])/g, (_: string, ch: string) => ch.toUpperCase()) + 'Entry'), `${f.name}: map entry ${n.name}`).toBe(true);
          }
          for (const r of m.reservedRange ?? []) expect(r.end, `${f.name} ${m.name}: reserved range ${r.start} to ${r.end} (end exclusive)`).toBeGreaterThan(r.start);
        }
        for (const s of f.service ?? []) for (const method of s.method ?? []) refs.push(method.inputType, method.outputType);
        for (const ref of refs) {
          expect(ref, `${f.name}: type name ${ref}`).toMatch(/^\./);
          const home = defined.get(ref);
          expect(home, `${f.name}: ${ref} is among the files reflection answered`).toBeDefined();
          if (home !== f.name) expect(f.dependency ?? [], `${f.name} imports ${home} (for ${ref})`).toContain(home);
        }
      }
    }
  });

  // grpcurl is on PATH in CI (.ci/run builds it); without it this test fails, it is not skipped.
  it('lets grpcurl describe the services and send an export through them', async () => {
    const described = await grpcurl(c.grpcAddress, 'describe', 'opentelemetry.proto.collector.trace.v1.TraceService');
    expect(described).toContain('rpc Export');
    const request = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'ESIzRFVmd4iZqrvM3e7/AA==', spanId: 'ESIzRFVmd4g=', name: 'from-grpcurl', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000100000000' }] }] }] });
    await grpcurl('-d', request, c.grpcAddress, 'opentelemetry.proto.collector.trace.v1.TraceService/Export');
    await eventually(async () => ((await getJson(c.queryUrl, '/v1/traces/112233445566778899aabbccddeeff00')).status === 200 ? true : undefined));
    expect(JSON.parse(await grpcurl(c.grpcAddress, 'grpc.health.v1.Health/Check'))).toEqual({ status: 'SERVING' });
  });
});

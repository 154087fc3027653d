// export / import at their edges, through the real command line and real SQLite stores: a backup
// of large rows restored with the settings that stored them (and a row too large for a decode
// worker's heap as OTLP/JSON, restored only with a larger heap), a file saved with a byte order
// mark, and an export interrupted by Ctrl-C.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, runCli, sqliteCount as count } from '../helpers/cli.ts';
import { encodeTraces } from '../helpers/otlp-proto.ts';
import { tempDir } from '../helpers/tmp.ts';

const FIXTURE = new URL('../fixtures/collector-fileexporter-json.jsonl', import.meta.url).pathname;

const run = (args: string[], input?: string) => runCli(args, input === undefined ? {} : { input });

const hex = (n: number, i: number) => i.toString(16).padStart(n * 2, '0');

/** One OTLP/JSON traces request of one span carrying a large string attribute. */
function bigSpanLine(i: number, attrBytes: number): string {
  const span = {
    traceId: hex(16, i + 1), spanId: hex(8, i + 1), name: 'llm.call', kind: 1,
    startTimeUnixNano: String(1544712660000000000n + BigInt(i)), endTimeUnixNano: String(1544712661000000000n + BigInt(i)),
    attributes: [{ key: 'gen_ai.prompt', value: { stringValue: 'x'.repeat(attrBytes) } }],
  };
  return JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'llm' } }] }, scopeSpans: [{ scope: { name: 's' }, spans: [span] }] }] });
}

describe('tracehouse export / import at the edges', () => {
  it('restores its own export with the configuration that stored the data (lines within receiver.maxMessageBytes)', () => {
    const dir = tempDir();
    const limit = ['--receiver.maxMessageBytes=1048576', '--workers.threads=1'];
    const src = join(dir, 'in.jsonl');
    // Each request is 300 KiB: well within the 1 MiB limit the collector runs with.
    writeFileSync(src, Array.from({ length: 8 }, (_, i) => bigSpanLine(i, 300 * 1024)).join('\n') + '\n');
    const a = join(dir, 'a.db');
    const imp = run(['import', src, '--quiet', `--storage.sqlite.path=${a}`, ...limit]);
    expect(imp.stderr).toBe('');
    expect(imp.status).toBe(0);
    expect(count(a, 'spans')).toBe(8);

    const file = join(dir, 'backup.jsonl');
    const exp = run(['export', '--out', file, '--quiet', `--storage.sqlite.path=${a}`, ...limit]);
    expect(exp.status).toBe(0);

    const b = join(dir, 'b.db');
    const back = run(['import', file, `--storage.sqlite.path=${b}`, ...limit]);
    expect(back.stderr).not.toContain('skipped');
    expect(back.status).toBe(0);
    expect(count(b, 'spans')).toBe(8);
  });

  it("copies a store of large rows in requests within the target's receiver.maxMessageBytes, as export writes its lines", () => {
    const dir = tempDir();
    const limit = ['--receiver.maxMessageBytes=1048576', '--workers.threads=1'];
    // A 192 MiB heap (a small container's): a decode worker refuses an OTLP/JSON request over
    // about 24 MiB, and a page of 1,000 spans of 30 KiB each is 30 MiB as one request.
    const env = { NODE_OPTIONS: '--max-old-space-size=192' };
    const src = join(dir, 'in.jsonl');
    writeFileSync(src, Array.from({ length: 1000 }, (_, i) => bigSpanLine(i, 30 * 1024)).join('\n') + '\n');
    const a = join(dir, 'a.db');
    expect(runCli(['import', src, '--quiet', `--storage.sqlite.path=${a}`, ...limit], { env }).status).toBe(0);
    expect(count(a, 'spans')).toBe(1000);

    const b = join(dir, 'b.db');
    const target = join(dir, 'b.yaml');
    writeFileSync(target, `storage:\n  backend: sqlite\n  sqlite:\n    path: ${b}\nreceiver:\n  maxMessageBytes: 1048576\nworkers:\n  threads: 1\n`);
    const copy = runCli(['copy', '--to-config', target, '--checkpoint', join(dir, 'cp.json'), '--quiet', `--storage.sqlite.path=${a}`, ...limit], { env });
    expect(copy.stderr).toBe('');
    expect(copy.status).toBe(0);
    expect(count(b, 'spans')).toBe(1000);
  }, 120_000);

  it('restores a store of many rows with the heap that filled it: lines of a page within what a decode worker decodes', () => {
    const dir = tempDir();
    // A 128 MiB heap (a small container's), receiver.maxMessageBytes as it comes (64 MiB): a
    // decode worker refuses an OTLP/JSON request over 16 MiB, and a page of 1,000 spans of 20 KiB
    // each is 20 MiB as one line.
    const env = { NODE_OPTIONS: '--max-old-space-size=128' };
    const limit = ['--workers.threads=1'];
    const src = join(dir, 'in.jsonl');
    writeFileSync(src, Array.from({ length: 1000 }, (_, i) => bigSpanLine(i, 20 * 1024)).join('\n') + '\n');
    const a = join(dir, 'a.db');
    expect(runCli(['import', src, '--quiet', `--storage.sqlite.path=${a}`, ...limit], { env }).status).toBe(0);
    expect(count(a, 'spans')).toBe(1000);

    const file = join(dir, 'backup.jsonl');
    expect(runCli(['export', '--out', file, '--quiet', `--storage.sqlite.path=${a}`, ...limit], { env }).status).toBe(0);
    const b = join(dir, 'b.db');
    const back = runCli(['import', file, `--storage.sqlite.path=${b}`, ...limit], { env });
    expect(back.stderr).not.toContain('not imported');
    expect(back.status).toBe(0);
    expect(count(b, 'spans')).toBe(1000);

    const target = join(dir, 'c.yaml');
    writeFileSync(target, `storage:\n  backend: sqlite\n  sqlite:\n    path: ${join(dir, 'c.db')}\nworkers:\n  threads: 1\n`);
    const copy = runCli(['copy', '--to-config', target, '--checkpoint', join(dir, 'cp.json'), '--quiet', `--storage.sqlite.path=${a}`, ...limit], { env });
    expect(copy.stderr).toBe('');
    expect(copy.status).toBe(0);
    expect(count(join(dir, 'c.db'), 'spans')).toBe(1000);
  }, 120_000);

  it('restores a row stored from protobuf whose OTLP/JSON line is over an eighth of a decode worker\'s heap only with a larger heap', () => {
    const dir = tempDir();
    // A 128 MiB heap (a small container's): a decode worker refuses an OTLP/JSON request over
    // about 16 MiB (decoding it takes eight times that), and protobuf is not decoded that way.
    const small = { NODE_OPTIONS: '--max-old-space-size=128' };
    const limit = ['--workers.threads=1'];
    // One span with a 24 MiB bytes attribute: 24 MiB as protobuf, within receiver.maxMessageBytes
    // (64 MiB); 32 MiB as OTLP/JSON (base64), within the 4 x 64 MiB import takes as a line.
    const now = String(BigInt(Date.now()) * 1_000_000n);
    const message = Buffer.from(encodeTraces({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'blob' } }] }, scopeSpans: [{ scope: { name: 's' }, spans: [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'upload', startTimeUnixNano: now, endTimeUnixNano: now, attributes: [{ key: 'payload', value: { bytesValue: randomBytes(24 << 20) } }] }] }] }] }));
    const size = Buffer.alloc(4);
    size.writeUInt32BE(message.length);
    // The Collector's length-delimited protobuf: stored through the same path as an OTLP/protobuf export.
    const src = join(dir, 'in.binpb');
    writeFileSync(src, Buffer.concat([size, message]));
    const a = join(dir, 'a.db');
    expect(runCli(['import', src, '--quiet', `--storage.sqlite.path=${a}`, ...limit], { env: small }).status).toBe(0);
    expect(count(a, 'spans')).toBe(1);

    const file = join(dir, 'backup.jsonl');
    expect(runCli(['export', '--out', file, '--quiet', `--storage.sqlite.path=${a}`, ...limit], { env: small }).status).toBe(0);

    // With the same heap the line is reported, not imported (exit 1); copy stops before it alike.
    const b = join(dir, 'b.db');
    const same = runCli(['import', file, `--storage.sqlite.path=${b}`, ...limit], { env: small });
    expect(same.stderr).toMatch(/backup\.jsonl:1: not imported: .*more than a decode worker's heap/);
    expect(same.status).toBe(1);
    expect(count(b, 'spans')).toBe(0);
    const target = join(dir, 'c.yaml');
    writeFileSync(target, `storage:\n  backend: sqlite\n  sqlite:\n    path: ${join(dir, 'c.db')}\nworkers:\n  threads: 1\n`);
    const copy = runCli(['copy', '--to-config', target, '--checkpoint', join(dir, 'cp.json'), '--quiet', `--storage.sqlite.path=${a}`, ...limit], { env: small });
    expect(copy.stderr).toMatch(/was not written: .*more than a decode worker's heap/);
    expect(copy.status).toBe(1);

    // With a heap eight times the line holds, it restores.
    const large = { NODE_OPTIONS: '--max-old-space-size=512' };
    const back = runCli(['import', file, '--quiet', `--storage.sqlite.path=${b}`, ...limit], { env: large });
    expect(back.stderr).toBe('');
    expect(back.status).toBe(0);
    expect(count(b, 'spans')).toBe(1);
  }, 120_000);

  it('imports a file saved with a UTF-8 byte order mark (and CRLF line ends) whole', () => {
    const dir = tempDir();
    const file = join(dir, 'bom.jsonl');
    const text = readFileSync(FIXTURE, 'utf8').trim().split('\n').join('\r\n') + '\r\n';
    writeFileSync(file, '\ufeff' + text);
    const a = join(dir, 'a.db');
    const r = run(['import', file, `--storage.sqlite.path=${a}`, '--workers.threads=1']);
    // Only the metrics line is a problem, as for the file without the mark.
    expect(r.stderr).not.toContain(`${file}:1:`);
    expect(r.stderr).toMatch(/import: 2 spans, 2 log records, \d+ bytes, [\d.]+ s, 1 problems/);
    expect(count(a, 'spans')).toBe(2);
  });

  it('leaves no partial file behind when an export is interrupted (Ctrl-C)', async () => {
    const dir = tempDir();
    const a = join(dir, 'a.db');
    // 60,000 log records: an export that takes a moment.
    const rec = (i: number) => ({ timeUnixNano: String(1544712660000000000n + BigInt(i)), severityNumber: 9, body: { stringValue: `record ${i} ` + 'y'.repeat(200) } });
    const lines = Array.from({ length: 60 }, (_, l) => JSON.stringify({ resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'bulk' } }] }, scopeLogs: [{ scope: { name: 's' }, logRecords: Array.from({ length: 1000 }, (_, i) => rec(l * 1000 + i)) }] }] }));
    const src = join(dir, 'bulk.jsonl');
    writeFileSync(src, lines.join('\n') + '\n');
    expect(run(['import', src, '--quiet', `--storage.sqlite.path=${a}`, '--workers.threads=1']).status).toBe(0);
    const out = join(dir, 'backup.jsonl.zst');
    const child = spawn(process.execPath, [CLI, 'export', '--out', out, '--quiet', `--storage.sqlite.path=${a}`], { env: { ...process.env, TRACEHOUSE_CONFIG: '' }, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const t0 = Date.now();
    while (!readdirSync(dir).some((f) => f.includes('.partial-')) && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 5));
    expect(readdirSync(dir).some((f) => f.includes('.partial-'))).toBe(true);
    child.kill('SIGINT');
    const code = await exited;
    expect(code).not.toBe(0);
    expect(readdirSync(dir).filter((f) => f.includes('backup'))).toEqual([]);
  }, 120_000);
});

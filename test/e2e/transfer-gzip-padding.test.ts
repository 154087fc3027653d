// A gzip file followed by zero bytes: what dd with conv=sync, a preallocated file or a crash that
// extended a file before its data reached the disk leaves. gzip itself reads such a file whole
// (`gzip -t` passes, `zcat` prints the data). Node's gunzip ends at the padding while the file is
// still being read; import then stopped reading the file under the decompressor, whose "premature
// close" error no one was listening for any more: the process crashed with a stack trace before
// storing the rows it had read.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { runCli, sqliteCount as count } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const FIXTURE = new URL('../fixtures/collector-fileexporter-json.jsonl', import.meta.url).pathname;

describe('import of a .gz file with zero bytes after its gzip data', () => {
  it('imports every line, as gzip reads the file, without crashing', () => {
    const dir = tempDir();
    // The fixture's traces and logs lines (its metrics line would make the exit code 1).
    const lines = readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l.includes('"resourceSpans"') || l.includes('"resourceLogs"'));
    const file = join(dir, 'padded.jsonl.gz');
    // More padding than one read of the file (64 KiB), so the file is still being read when gunzip ends.
    writeFileSync(file, Buffer.concat([gzipSync(lines.join('\n') + '\n'), Buffer.alloc(256 << 10)]));
    const db = join(dir, 'a.db');
    const r = runCli(['import', file, `--storage.sqlite.path=${db}`, '--workers.threads=1']);
    expect(r.stderr).not.toContain('Unhandled');
    expect(r.stderr).toMatch(/import: 2 spans, 2 log records/);
    expect(r.status).toBe(0);
    expect(count(db, 'spans')).toBe(2);
    expect(count(db, 'logs')).toBe(2);
  });
});

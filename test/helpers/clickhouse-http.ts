// ClickHouse's HTTP interface over this process's chdb engine, so that the adapter's HTTP path
// (what a production collector uses) and whatever stands between it and the server (a proxy of a
// test's own) run against real tables. chdb is in-process, with no HTTP server of its own: this
// listener takes the requests @clickhouse/client sends (query in the body, or in ?query= with the
// data as the body; param_* bindings) and runs them on chdb. RowBinary bodies go through a file,
// as the adapter's chdb shard does (chdb's Connection reads insert bodies as text).
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { tempDir } from './tmp.ts';

export interface ChdbHttp {
  /** http://127.0.0.1:port */
  url: string;
  close(): Promise<void>;
}

/** An INSERT … FORMAT RowBinary whose data is in `file`, rewritten to read it there. */
function readingFile(query: string, file: string): string {
  const f = `'${file}'`;
  const input = /FROM input\(('(?:[^'\\]|\\.)*')\)\s*FORMAT RowBinary\s*$/s;
  if (input.test(query)) return query.replace(input, `FROM file(${f}, 'RowBinary', $1)`);
  const plain = /^(INSERT INTO .*?\))(.*?)\s*FORMAT RowBinary\s*$/s.exec(query);
  if (!plain) throw new Error(`not an insert this shim knows: ${query.slice(0, 200)}`);
  return `${plain[1]} FROM INFILE ${f}${plain[2]} FORMAT RowBinary`;
}

/** Serves ClickHouse's HTTP interface on 127.0.0.1 (a free port) over `client`, a chdb client. */
export async function serveChdbOverHttp(client: ClickHouseClient): Promise<ChdbHttp> {
  const dir = tempDir('tracehouse-chdb-http-');
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      void (async () => {
        const u = new URL(req.url ?? '/', 'http://x');
        if (u.pathname === '/ping') return void res.end('Ok.\n');
        const body = Buffer.concat(parts);
        // Values come as ClickHouse's text form; chdb's binder wants JS values (an array as one).
        const params = Object.fromEntries(
          [...u.searchParams].filter(([k]) => k.startsWith('param_')).map(([k, v]) => [k.slice('param_'.length), /^\[.*\]$/s.test(v) ? (JSON.parse(v.replace(/'/g, '"')) as unknown) : v]),
        );
        let query = u.searchParams.get('query') ?? body.toString('utf8');
        let file: string | undefined;
        try {
          if (u.searchParams.has('query') && body.length > 0) {
            file = join(dir, `${randomUUID()}.rowbinary`);
            writeFileSync(file, body);
            query = readingFile(query, file);
          }
          const r = await client.exec({ query, ...(Object.keys(params).length > 0 && { query_params: params }) });
          const out: Buffer[] = [];
          for await (const c of r.stream) out.push(c as Buffer);
          res.end(Buffer.concat(out));
        } catch (err) {
          const e = err as { code?: unknown; type?: unknown; message: string };
          const code = typeof e.code === 'string' || typeof e.code === 'number' ? String(e.code) : '1000';
          res.writeHead(500, { 'X-ClickHouse-Exception-Code': code });
          res.end(`Code: ${code}. DB::Exception: ${e.message}. (${typeof e.type === 'string' ? e.type : 'STD_EXCEPTION'}) (version chdb)\n`);
        } finally {
          if (file !== undefined) rmSync(file, { force: true });
        }
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

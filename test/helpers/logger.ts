// A pino logger whose lines a test can read back.
import { Writable } from 'node:stream';
import { pino } from 'pino';

/** A logger at info level and the lines it has written so far, parsed. */
export function capturedLogger(): { logger: pino.Logger; lines: () => { msg: string; [field: string]: unknown }[] } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string }) };
}

// The progress display of export, import and copy: a bar with counts, rate and ETA on a
// terminal, plain periodic lines elsewhere, nothing but problems with --quiet, one summary line.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Progress } from '../../src/transfer/progress.ts';

function stream(tty: boolean): { s: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const w = new Writable({
    write(chunk: Buffer, _e, cb) {
      out += chunk.toString();
      cb();
    },
  }) as unknown as NodeJS.WriteStream & { isTTY: boolean; columns: number };
  w.isTTY = tty;
  w.columns = 200;
  return { s: w, text: () => out };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('transfer progress', () => {
  it('redraws a bar with counts, rate and ETA on a terminal, then prints the summary', async () => {
    const t = stream(true);
    const p = new Progress({ verb: 'import', quiet: false, stream: t.s });
    p.update({ spans: 12_000, logs: 30, bytes: 3 << 20 }, 0.25);
    await sleep(450);
    const summary = p.finish();
    expect(t.text()).toMatch(/\r\[######\.{18}\]  25% import: 12\.0k spans, 30 log records, 3\.0 MiB, [\d.]+k? rows\/s ETA \d+s/);
    expect(summary).toMatch(/^import: 12000 spans, 30 log records, 3145728 bytes, [\d.]+ s$/);
    expect(t.text().endsWith(summary + '\n')).toBe(true);
  });

  it('writes plain lines when not a terminal, and only the summary is certain', async () => {
    const t = stream(false);
    const p = new Progress({ verb: 'export', quiet: false, stream: t.s, plainIntervalMs: 100 });
    p.update({ spans: 5, logs: 0, bytes: 10 });
    await sleep(250);
    p.finish();
    const lines = t.text().trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toMatch(/^export: 5 spans, 0 log records, 10 B, \d+ rows\/s$/);
    expect(t.text()).not.toContain('\r');
  });

  it('prints nothing with quiet', async () => {
    const t = stream(true);
    const p = new Progress({ verb: 'copy', quiet: true, stream: t.s });
    p.update({ spans: 1, logs: 1, bytes: 1 }, 0.5);
    await sleep(250);
    expect(p.finish()).toMatch(/^copy: 1 spans, 1 log records, 1 bytes/);
    expect(t.text()).toBe('');
  });
});

// The transcoders' duplicate-key prefilter: a key whose stamp no earlier key of its list set is
// new for certain; any other is compared. A missed stamp would let a repeated key through.
import { describe, expect, it } from 'vitest';
import { KeyStamps } from '../../src/pipeline/transcode/wire-scan.ts';

const key = (s: string) => new Uint8Array(Buffer.from(s));

describe('KeyStamps', () => {
  it('says a key of the list came before when it did, and forgets the keys of earlier lists', () => {
    const stamps = new KeyStamps();
    const a = key('http.method');
    stamps.begin();
    expect(stamps.seen(a, 0, a.length)).toBe(false);
    expect(stamps.seen(a, 0, a.length)).toBe(true);
    expect(stamps.seen(new Uint8Array(0), 0, 0)).toBe(false);
    stamps.begin();
    expect(stamps.seen(a, 0, a.length)).toBe(false);
  });

  it('keeps finding repeated keys past 2^31 lists (the generation wraps as the stamps store it)', () => {
    const stamps = new KeyStamps(2 ** 31 - 3);
    const a = key('k');
    for (let list = 0; list < 6; list++) {
      stamps.begin();
      expect(stamps.seen(a, 0, a.length)).toBe(false);
      expect(stamps.seen(a, 0, a.length)).toBe(true);
    }
  });
});

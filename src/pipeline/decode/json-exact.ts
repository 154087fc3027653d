// JSON.parse with exact integers, without recursion. JSON.parse with a reviver (what reading
// int64 numbers beyond 2^53 exactly used to take) walks the result recursively in V8, so a
// document nested a few thousand levels deep overflowed the stack; this parser keeps its own
// stack of open containers instead. It only ever runs on text JSON.parse has already accepted,
// so it does not validate.

const INTEGER_SOURCE = /^-?\d+$/;
const NUMBER_PARTS = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/**
 * The exact integer a number literal beyond 2^53 denotes, written with a fraction or an exponent
 * too (1234567890123456789.0, 1.234567890123456789e18); undefined when its fraction is not zero.
 */
function exactInteger(source: string, n: number): bigint | undefined {
  if (INTEGER_SOURCE.test(source)) return BigInt(source);
  // Past 2^65 no int64 or uint64 field can take it: no digits need writing out.
  if (!Number.isInteger(n) || Math.abs(n) > 2 ** 65) return undefined;
  const m = NUMBER_PARTS.exec(source);
  if (m === null) return undefined;
  const frac = m[3] ?? '';
  let digits = m[2]! + frac;
  const exp = Number(m[4] ?? '0') - frac.length;
  if (exp >= 0) digits += '0'.repeat(exp);
  else {
    if (!/^0*$/.test(digits.slice(exp))) return undefined;
    digits = digits.slice(0, exp) || '0';
  }
  return BigInt(m[1]! + digits);
}

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Parses text that JSON.parse accepts into the same value, except that integers beyond ±2^53 come
 * back as exact bigints (where JSON.parse would round them to a number), also when written with a
 * zero fraction or an exponent; one with a fraction that is not zero stays a (rounded) number.
 */
export function parseExactIntegers(text: string): unknown {
  const open: (unknown[] | Record<string, unknown>)[] = [];
  let root: unknown;
  let key = '';
  let i = 0;

  const skipWs = () => {
    while (i < text.length && isWhitespace(text.charCodeAt(i))) i++;
  };
  const readString = (): string => {
    const start = i;
    let j = i + 1;
    let escaped = false;
    for (;;) {
      const c = text.charCodeAt(j);
      if (c === 0x22) break;
      if (c === 0x5c) {
        escaped = true;
        j += 2;
      } else j++;
    }
    i = j + 1;
    return escaped ? (JSON.parse(text.slice(start, j + 1)) as string) : text.slice(start + 1, j);
  };
  const put = (v: unknown) => {
    const top = open[open.length - 1];
    if (top === undefined) root = v;
    else if (Array.isArray(top)) top.push(v);
    // As JSON.parse: "__proto__" is an own property, never the prototype.
    else if (key === '__proto__') Object.defineProperty(top, key, { value: v, writable: true, enumerable: true, configurable: true });
    else top[key] = v;
  };

  for (;;) {
    skipWs();
    const top = open[open.length - 1];
    if (top !== undefined && !Array.isArray(top)) {
      // In an object, after '{' or ',': a key comes first.
      key = readString();
      skipWs();
      i++; // ':'
      skipWs();
    }
    const c = text.charCodeAt(i);
    let opened = false;
    if (c === 0x7b || c === 0x5b) {
      const container = c === 0x7b ? {} : [];
      put(container);
      open.push(container);
      i++;
      skipWs();
      const next = text.charCodeAt(i);
      if (next === 0x7d || next === 0x5d) {
        i++;
        open.pop();
      } else opened = true;
    } else if (c === 0x22) put(readString());
    else if (c === 0x74) {
      put(true);
      i += 4;
    } else if (c === 0x66) {
      put(false);
      i += 5;
    } else if (c === 0x6e) {
      put(null);
      i += 4;
    } else {
      const start = i;
      while (i < text.length) {
        const d = text.charCodeAt(i);
        if ((d >= 0x30 && d <= 0x39) || d === 0x2d || d === 0x2b || d === 0x2e || d === 0x65 || d === 0x45) i++;
        else break;
      }
      const source = text.slice(start, i);
      const n = Number(source);
      put((Number.isSafeInteger(n) ? undefined : exactInteger(source, n)) ?? n);
    }
    if (opened) continue;
    // After a value: commas go on to the next value, closers end containers.
    for (;;) {
      skipWs();
      if (open.length === 0) return root;
      const d = text.charCodeAt(i++);
      if (d === 0x2c) break;
      open.pop(); // '}' or ']'
    }
  }
}

// Header parsing of the OTLP/HTTP receiver: content types, encodings and CORS origin patterns.
import { describe, expect, it } from 'vitest';
import { encodingOf, formatOf, originMatcher } from '../../src/receiver/http.ts';

describe('formatOf', () => {
  it('maps the two OTLP content types, ignoring case, spaces and parameters', () => {
    expect(formatOf('application/x-protobuf')).toBe('protobuf');
    expect(formatOf('Application/X-Protobuf')).toBe('protobuf');
    expect(formatOf('application/json')).toBe('json');
    expect(formatOf('application/json; charset=utf-8')).toBe('json');
    expect(formatOf(' application/json ;charset=UTF-8')).toBe('json');
  });
  it('refuses anything else', () => {
    for (const ct of [undefined, '', 'text/plain', 'application/protobuf', 'application/jsonx', 'application/grpc', 'json']) expect(formatOf(ct), String(ct)).toBeUndefined();
  });
});

describe('encodingOf', () => {
  it('accepts identity and gzip', () => {
    expect(encodingOf(undefined)).toBe('identity');
    expect(encodingOf('')).toBe('identity');
    expect(encodingOf('identity')).toBe('identity');
    expect(encodingOf('gzip')).toBe('gzip');
    expect(encodingOf('GZIP')).toBe('gzip');
    expect(encodingOf('x-gzip')).toBe('gzip');
    expect(encodingOf('deflate')).toBe('deflate');
    expect(encodingOf('zlib')).toBe('deflate');
    expect(encodingOf('ZSTD')).toBe('zstd');
  });
  it('refuses other encodings', () => {
    for (const e of ['br', 'lz4', 'snappy', 'gzip, br', 'compress']) expect(encodingOf(e), e).toBeUndefined();
  });
});

describe('originMatcher', () => {
  it("'*' allows any origin", () => {
    const m = originMatcher(['*']);
    expect(m('https://anything.test')).toBe(true);
    expect(m('null')).toBe(true);
  });
  it('matches exact origins case-insensitively', () => {
    const m = originMatcher(['https://App.example.com']);
    expect(m('https://app.example.com')).toBe(true);
    expect(m('https://app.example.com:8443')).toBe(false);
    expect(m('http://app.example.com')).toBe(false);
    expect(m('https://app.example.com.evil.net')).toBe(false);
  });
  it('takes an origin written with a trailing slash as the origin (the Origin header has none)', () => {
    const m = originMatcher(['https://app.example.com/', 'https://*.example.org/']);
    expect(m('https://app.example.com')).toBe(true);
    expect(m('https://ui.example.org')).toBe(true);
    expect(m('https://evil.net')).toBe(false);
  });
  it('matches an origin written as a URL rather than as the browser serializes it: default port, path, IDN', () => {
    // A browser's Origin omits its scheme's default port and any path, and spells an IDN host in punycode.
    const m = originMatcher(['https://app.example.com:443', 'http://localhost:80/', 'https://*.example.org:443', 'https://ui.example.net/app/', 'https://bücher.example']);
    expect(m('https://app.example.com')).toBe(true);
    expect(m('http://localhost')).toBe(true);
    expect(m('https://ui.example.org')).toBe(true);
    expect(m('https://ui.example.net')).toBe(true);
    expect(m('https://xn--bcher-kva.example')).toBe(true);
    expect(m('https://app.example.com:8443')).toBe(false);
    expect(m('http://localhost:8080')).toBe(false);
    expect(m('https://evil.net')).toBe(false);
  });
  it('matches wildcard subdomains without crossing into paths or other hosts', () => {
    const m = originMatcher(['https://*.example.org']);
    expect(m('https://ui.example.org')).toBe(true);
    expect(m('https://a.b.example.org')).toBe(true);
    expect(m('https://example.org')).toBe(false);
    expect(m('https://evil.net/.example.org')).toBe(false);
    expect(m('https://uiXexample.org')).toBe(false);
    expect(m('http://ui.example.org')).toBe(false);
  });
});

// deploy/Dockerfile without a Docker daemon: its HEALTHCHECK command run against a real collector,
// its listen environment checked against the options table, and the lockfile install it relies on.
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envName, loadConfig } from '../../src/config/index.ts';
import { eventually, startCollector } from '../helpers/collector.ts';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
// Continuation lines joined, so each instruction is one line.
const DOCKERFILE = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
const instructions = DOCKERFILE.split('\n').filter((l) => /^[A-Z]+\s/.test(l));

function healthcheckArgv(): string[] {
  const line = instructions.find((l) => l.startsWith('HEALTHCHECK'));
  expect(line).toBeDefined();
  const exec = /CMD\s+(\[.*\])\s*$/.exec(line!);
  expect(exec, 'HEALTHCHECK in exec form').not.toBeNull();
  return JSON.parse(exec![1]!) as string[];
}

/** The image's ENV instructions, as the container's processes (the collector, the check) see them. */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const l of instructions.filter((i) => i.startsWith('ENV '))) {
    for (const m of l.matchAll(/([A-Z_]+)=(\S+)/g)) env[m[1]!] = m[2]!;
  }
  return env;
}

function runHealthcheck(env: Record<string, string>): Promise<number> {
  const [cmd, ...args] = healthcheckArgv();
  expect(cmd).toBe('node');
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env: { ...process.env, ...env }, timeout: 15_000 }, (err) => resolve(err ? Number(err.code ?? 1) : 0));
  });
}

describe('deploy/Dockerfile', () => {
  it('HEALTHCHECK passes on a running collector and fails once it stopped', async () => {
    const c = await startCollector({ 'storage.backend': 'memory' });
    const ops = new URL(c.opsUrl);
    const env = { TRACEHOUSE_OPS_LISTEN: `0.0.0.0:${ops.port}` };
    expect(await runHealthcheck(env)).toBe(0);
    await c.stop();
    expect(await runHealthcheck(env)).toBe(1);
  });

  it('HEALTHCHECK follows an ops.listen given as a flag (docker run … tracehouse start --ops.listen=…), which it cannot see', async () => {
    // The container's environment as the image sets it, but the address file in a directory of this
    // test's own; the receivers on free ports (flags win over the image's variables, as in the container).
    const env = { ...imageEnv(), TRACEHOUSE_OPS_ADDRESS_FILE: join(tempDir(), 'tracehouse-ops.json') };
    const flags = ['--storage.backend=memory', '--workers.threads=1', '--receiver.grpc.listen=127.0.0.1:0', '--receiver.http.listen=127.0.0.1:0', '--query.listen=127.0.0.1:0', '--ops.listen=0.0.0.0:26931'];
    const child = spawn(process.execPath, [join(ROOT, 'bin/tracehouse.js'), 'start', ...flags], { env: { ...process.env, ...env, TRACEHOUSE_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      await eventually(() => Promise.resolve(out.includes('tracehouse started') || child.exitCode !== null ? true : undefined), 20_000, 'collector start');
      expect(child.exitCode, out).toBeNull();
      expect(await runHealthcheck(env)).toBe(0);
      // The collector wrote where its wildcard ops listener is reached, in a directory the image's user can write.
      expect(JSON.parse(readFileSync(env.TRACEHOUSE_OPS_ADDRESS_FILE, 'utf8'))).toEqual({ host: '127.0.0.1', port: 26931 });
      expect(imageEnv()['TRACEHOUSE_OPS_ADDRESS_FILE']).toMatch(/^\/tmp\//);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    expect(await runHealthcheck(env)).toBe(1);
  });

  it('binds all four listeners on 0.0.0.0 through variables the collector reads', () => {
    const env: Record<string, string> = {};
    for (const l of instructions.filter((i) => i.startsWith('ENV '))) {
      for (const m of l.matchAll(/(TRACEHOUSE_[A-Z_]+)=(\S+)/g)) env[m[1]!] = m[2]!;
    }
    const expected = { 'receiver.grpc.listen': '0.0.0.0:4317', 'receiver.http.listen': '0.0.0.0:4318', 'query.listen': '0.0.0.0:16686', 'ops.listen': '0.0.0.0:8888' } as const;
    for (const [key, value] of Object.entries(expected)) expect(env[envName(key)], key).toBe(value);
    const config = loadConfig({ env });
    for (const [key, value] of Object.entries(expected)) expect(config[key as keyof typeof expected]).toBe(value);
  });

  it('starts the package command, whose files the build context and the image carry', () => {
    const entry = instructions.find((l) => l.startsWith('ENTRYPOINT'));
    expect(JSON.parse(/ENTRYPOINT\s+(\[.*\])\s*$/.exec(entry ?? '')?.[1] ?? 'null')).toEqual(['node', 'bin/tracehouse.js']);
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    const copied = instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from')).flatMap((l) => l.split(/\s+/).slice(1, -1));
    for (const dir of ['bin', 'src', 'proto']) {
      expect(copied, dir).toContain(dir);
      expect(ignore, dir).toContain(`!${dir}/`);
    }
  });

  it('installs from the lockfile, labels the image and lets the base image be pinned', () => {
    const run = instructions.filter((l) => l.startsWith('RUN '));
    expect(run.some((l) => l.includes('npm ci --omit=dev --omit=optional'))).toBe(true);
    expect(run.some((l) => /npm install\b/.test(l))).toBe(false);
    expect(instructions[0]).toMatch(/^ARG NODE_IMAGE=node:24-slim$/);
    expect(instructions.filter((l) => l.startsWith('FROM ')).every((l) => l.startsWith('FROM ${NODE_IMAGE}'))).toBe(true);
    for (const label of ['title', 'description', 'version', 'revision', 'created', 'licenses', 'base.name']) {
      expect(DOCKERFILE, label).toContain(`org.opencontainers.image.${label}=`);
    }
  });
});

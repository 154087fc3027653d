// When a store cannot be reached, `tracehouse migrate` and start-up name the key and its value with
// the password hidden (storeEndpoint). Forms PostgreSQL's client takes as they are, a URL with no
// user before the password's colon or a password holding a space, were printed whole, password
// and all, into the Job's or the pod's log.
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { freePort } from '../helpers/os.ts';


describe('an unreachable store named with its password hidden', () => {
  it.each([
    ['no user', (port: number) => `postgres://:Sekr1tNoUser@127.0.0.1:${port}/db`, 'Sekr1tNoUser'],
    ['a space in the password', (port: number) => `postgres://app:Sekr1t with space@127.0.0.1:${port}/db`, 'Sekr1t'],
  ])('postgres, %s', async (_, url, secret) => {
    const port = await freePort();
    const r = runCli(['migrate', '--storage.backend=postgres', `--storage.postgres.url=${url(port)}`, '--storage.startWaitMs=0']);
    expect(r.status).toBe(1);
    // The message names the key and where it looked...
    expect(r.stderr).toContain(`storage.postgres.url = "postgres://`);
    expect(r.stderr).toContain(`127.0.0.1:${port}/db`);
    // ...and never the password.
    expect(r.stdout + r.stderr).not.toContain(secret);
  }, 20_000);
});

// Suite-wide setup: one embedded PostgreSQL for every test file that needs one (each file creates
// its own database in it), unless TRACEHOUSE_TEST_POSTGRES_URL names a server to use instead.
// A server that fails to start does not stop the suite: the PostgreSQL tests report why.
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedServer } from './helpers/postgres.ts';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let server: EmbeddedServer | undefined;
  const external = process.env['TRACEHOUSE_TEST_POSTGRES_URL'];
  if (external) {
    project.provide('tracehouse.postgres', { url: external });
  } else {
    try {
      server = await startEmbeddedPostgres();
      project.provide('tracehouse.postgres', { url: server.url });
    } catch (err) {
      project.provide('tracehouse.postgres', { url: '', error: err instanceof Error ? err.message : String(err) });
    }
  }
  return async () => {
    await server?.destroy();
  };
}

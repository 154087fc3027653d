// storage.sqlite.path may be one of SQLite's URI filenames (file:/dir/th.db?mode=rwc), which
// node:sqlite opens: the file it names is its path part (after an empty or localhost authority,
// before the query), percent-decoded. Files kept beside the store follow that file, not the URI text.

/** file: and an empty or localhost authority; the path; the query and fragment. */
const URI = /^(file:(?:\/\/(?:localhost)?(?=\/))?)([^?#]*)([\s\S]*)$/;

/** The file a storage.sqlite.path names: itself, or a URI filename's path. */
export function sqliteFilePath(path: string): string {
  const m = URI.exec(path);
  if (!m) return path;
  try {
    return decodeURIComponent(m[2]!);
  } catch {
    return m[2]!;
  }
}

/** A storage.sqlite.path naming the file beside it with `suffix` appended: a URI's query kept after its path. */
function sqlitePathWithSuffix(path: string, suffix: string): string {
  const m = URI.exec(path);
  return m ? `${m[1]}${m[2]}${suffix}${m[3]}` : `${path}${suffix}`;
}

/** The trace index's file for a store's file (':memory:' for ':memory:'). */
export function traceIndexPath(path: string): string {
  // A URI filename's index is the file beside the one it names, with the same query (cache=shared, say).
  return path === ':memory:' ? path : sqlitePathWithSuffix(path, '-traces');
}

/**
 * A storage.sqlite.path as a read-only connection opens it: a URI's mode=rw or mode=rwc (which
 * SQLite refuses with a read-only open, "access mode not allowed") read as mode=ro.
 */
export function sqliteReadOnlyPath(path: string): string {
  const m = URI.exec(path);
  if (!m) return path;
  const hash = m[3]!.indexOf('#');
  const [query, fragment] = hash < 0 ? [m[3]!, ''] : [m[3]!.slice(0, hash), m[3]!.slice(hash)];
  return `${m[1]}${m[2]}${query.replace(/([?&])mode=rwc?(?=&|$)/g, '$1mode=ro')}${fragment}`;
}

// A file's identity (its device and inode), to tell when a path no longer names the file a
// process has open: a file deleted, moved away or replaced under a running collector is still
// written through its open descriptor, where no start would find what went into it. The SQLite
// store checks its file and its -wal file this way, the write-ahead log its segment and its lock.
import { statSync } from 'node:fs';

export interface FileId {
  dev: number;
  ino: number;
}

/** Whether a stat of a path is the file id names. */
export function sameFile(st: FileId, id: FileId): boolean {
  return st.dev === id.dev && st.ino === id.ino;
}

/** The file a path names now, or undefined when it names none or cannot be looked at. */
export function fileId(path: string): FileId | undefined {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    return st && { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

/**
 * Undefined while the path names the file id names, or cannot be looked at now (a permission of its
 * directory: not known to be gone); else what is there instead, for a message.
 */
export function fileChange(path: string, id: FileId): string | undefined {
  let st;
  try {
    st = statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
  if (st && sameFile(st, id)) return undefined;
  return st ? 'another file is there now: moved or replaced' : 'deleted or moved away';
}

// Notices that files may have changed. cert-manager and Kubernetes Secret volumes replace files by
// swapping a symlinked folder (..data), so a watch on the file itself goes deaf after the first
// swap: the folders are watched instead, and a periodic check covers file systems whose change
// notifications are unreliable (NFS, some overlay mounts). Callers compare contents themselves.
import { watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';

const DEBOUNCE_MS = 100;

/** Calls check() soon after any of the files' folders changes, and every intervalMs. */
export class FileWatch {
  private readonly dirs: string[];
  private readonly watchers: FSWatcher[] = [];
  private interval: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;

  private readonly intervalMs: number;
  private readonly check: () => void;

  constructor(files: readonly string[], intervalMs: number, check: () => void) {
    this.intervalMs = intervalMs;
    this.check = check;
    this.dirs = [...new Set(files.map((f) => dirname(resolve(f))))];
  }

  start(): void {
    if (this.interval) return;
    this.interval = setInterval(() => this.check(), this.intervalMs);
    this.interval.unref();
    for (const dir of this.dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.soon());
        // A folder that goes away ends its watch; the periodic check still runs.
        w.on('error', () => w.close());
        this.watchers.push(w);
      } catch {
        // Not watchable here (missing folder, no inotify slots): the periodic check covers it.
      }
    }
  }

  private soon(): void {
    // A swap touches several entries at once; read once after it settles.
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.check();
    }, DEBOUNCE_MS);
    this.debounce.unref();
  }

  shutdown(): void {
    if (this.interval) clearInterval(this.interval);
    if (this.debounce) clearTimeout(this.debounce);
    this.interval = undefined;
    this.debounce = undefined;
    for (const w of this.watchers.splice(0)) w.close();
  }
}

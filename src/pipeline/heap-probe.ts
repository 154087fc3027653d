// A worker that posts its old generation and ends (oldSpaceOfThreads in pool.ts): every thread's of
// this process, which the main thread cannot tell from its own heap limit (only a worker is told
// the young generation's size).
import { parentPort } from 'node:worker_threads';
import { oldSpaceBytes } from './decode/common.ts';

parentPort!.postMessage(oldSpaceBytes());

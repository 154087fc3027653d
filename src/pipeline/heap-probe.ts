// A worker that posts its old generation and ends (jsonBodyLimitOfWorkers in pool.ts): a decode
// worker's heap, which the main thread cannot tell from its own (a worker's young generation).
import { parentPort } from 'node:worker_threads';
import { oldSpaceBytes } from './decode/common.ts';

parentPort!.postMessage(oldSpaceBytes());

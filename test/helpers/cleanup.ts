// Setup file of every test file (vitest.config.ts): temporary directories go with the file.
import { afterAll } from 'vitest';
import { removeTempDirs } from './tmp.ts';

afterAll(removeTempDirs);

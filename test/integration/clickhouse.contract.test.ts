// The storage contract against the ClickHouse adapter on chdb's in-process engine, with two
// shards (two databases of the one engine) so every read goes through the fan-out and merge.
import { afterAll } from 'vitest';
import { describeStorageContract } from '../contract/storage-contract.ts';
import { chdbBackend, removeChdbDir, uniqueDatabase } from '../helpers/clickhouse.ts';

describeStorageContract('clickhouse (chdb, 2 shards)', () => chdbBackend([uniqueDatabase('contract0'), uniqueDatabase('contract1')]));

afterAll(removeChdbDir); // after the suite has shut its backend down

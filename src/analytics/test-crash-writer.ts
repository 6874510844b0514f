// Child process for the crash test: records numbered requests as fast as it can while storing them, until it is SIGKILLed.
// Usage: node --import tsx test-crash-writer.ts DIR DATABASE_URL SCHEMA TAG — prints the count acknowledged so far after each burst.
import { Registry } from 'prom-client';
import { openDatabase } from '../store/index.js';
import { AnalyticsPipeline } from './pipeline.js';
import { sampleRecord, testSettings } from './test-records.js';

const [dir, url, schema, tag] = process.argv.slice(2);
const db = await openDatabase(url, { schema: schema || undefined, listen: false });
// The writer thread stores, as in a gateway on a file or PostgreSQL database: a kill can land mid-insert there too.
const pipeline = new AnalyticsPipeline({
  db,
  databaseUrl: url,
  databaseSchema: schema || undefined,
  settings: testSettings(dir, { flushInterval: '5ms', batchSize: 50 }),
  registry: new Registry(),
});
pipeline.start();
// The writer thread is up and connected before the load starts (from TypeScript sources it takes a while), so the
// kill lands while batches are being stored.
pipeline.record(sampleRecord(0, { requestId: `${tag}warmup` }));
await pipeline.flush();

let n = 0;
function burst(): void {
  for (let i = 0; i < 100; i++, n++) {
    const count = n + 1;
    // Reported the way the data plane answers: from record()'s callback, once the record is in the kernel. Writes to
    // a pipe are synchronous on Linux: once the parent reads a count, that many records were acknowledged.
    pipeline.record(sampleRecord(n, { requestId: `${tag}-${n}` }), i === 99 ? () => process.stdout.write(`${count}\n`) : undefined);
  }
  setImmediate(burst);
}
burst();

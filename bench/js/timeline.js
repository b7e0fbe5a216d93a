// bench/js/timeline.js: the enriched-timeline read with the official JavaScript client
// (getstream 8.x), as bench/timeline.lua's `read` does it:
//   node bench/js/timeline.js N WARMUP
// feed('timeline', 'bench-reader').get({enrich: true, limit: 25}) N times one after the
// other (after WARMUP calls) against STREAM_BASE_URL. Prints one `bench ...` line.
'use strict';
const stream = require('getstream');

const n = Number(process.argv[2] || 2000);
const warm = Number(process.argv[3] || 3000);
const client = stream.connect(
  process.env.STREAM_API_KEY || 'local-api-key',
  process.env.STREAM_API_SECRET || 'local-api-secret-change-me-0123456789',
);
const feed = client.feed('timeline', 'bench-reader');

async function once() {
  const page = await feed.get({ enrich: true, limit: 25 });
  if (page.results.length !== 25) throw new Error('bad answer');
}

(async () => {
  for (let i = 0; i < warm; i++) await once();
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await once();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  console.log(`bench client=js cpu_us=${((cpu.user + cpu.system) / n).toFixed(1)} n=${n} op=timeline ` +
    `rps=${(n / secs).toFixed(0)} seconds=${secs.toFixed(3)}`);
})().catch((e) => { console.error(e); process.exit(1); });

// bench/js/bench.js: the peer, the official JavaScript client (npm getstream, pinned
// in package.json), doing what bench/throughput.lua does, for one case:
//
//   node bench/js/bench.js SERVER OP MODE N WARMUP
//
// OP: get (client.user("bench-user").get()), create (client.user(unique id).create(~1 kB
// data)), update (user.update(~1 kB data)). MODE: seq (await one call after the other) or
// par (BENCH_CONC, default 32, async workers pulling calls from one counter: 32 in
// flight). The client is getstream's own: its axios instance with the keep-alive
// connection pool (node http, keepAlive: true) it sets up by default. It builds URLs
// as STREAM_BASE_URL + "v1.0/" + path (lib/client.js getBaseUrl/enrichUrl), so
// STREAM_BASE_URL=http://127.0.0.1:PORT/api/ hits /api/v1.0/user/... like lua-stream.
// WARMUP calls run first (bench/run gives 3000: node's JIT needs that many before the
// client reaches its steady speed), then N calls are timed (process.hrtime;
// process.cpuUsage for cpu_us= per call). The data comes from BENCH_DATA_1K and
// BENCH_PROFILE (JSON files bench/run writes from bench/common.lua: the same tables
// lua-stream sends).
// Prints one line: bench client=js server=.. op=.. mode=.. conc=.. n=.. seconds=.. rps=.. cpu_us=.. errors=..
'use strict';
const fs = require('fs');
const stream = require('getstream');

const [server, op, mode] = process.argv.slice(2, 5);
const n = Number(process.argv[5] || 2000);
const warm = Number(process.argv[6] || 200);
const conc = Number(process.env.BENCH_CONC || 32);
const tag = (process.env.BENCH_TAG || String(Date.now())) + '-js';
if (!['get', 'create', 'update'].includes(op) || !['seq', 'par'].includes(mode)) {
  console.error('usage: node bench.js SERVER get|create|update seq|par N WARMUP');
  process.exit(2);
}
if (!process.env.STREAM_BASE_URL) {
  console.error('bench.js: set STREAM_BASE_URL (e.g. http://127.0.0.1:8000/api/)');
  process.exit(2);
}
const data = JSON.parse(fs.readFileSync(process.env.BENCH_DATA_1K, 'utf8'));
const profile = JSON.parse(fs.readFileSync(process.env.BENCH_PROFILE, 'utf8'));

const client = stream.connect(
  process.env.STREAM_API_KEY || 'local-api-key',
  process.env.STREAM_API_SECRET || 'local-api-secret-change-me-0123456789',
);
const me = client.user('bench-user');
let seq = 0;
let firstError = null;

function one() {
  if (op === 'get') return me.get();
  if (op === 'create') return client.user(`${tag}-${++seq}`).create(data);
  return me.update(data);
}

async function run(count) {
  let errors = 0;
  const call = async () => {
    try {
      await one();
    } catch (e) {
      errors++;
      if (!firstError) firstError = e;
    }
  };
  if (mode === 'seq') {
    for (let i = 0; i < count; i++) await call();
  } else {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        await call();
      }
    };
    await Promise.all(Array.from({ length: Math.min(conc, count) }, worker));
  }
  return errors;
}

(async () => {
  await me.getOrCreate(profile);
  if (warm > 0) await run(warm);
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const errors = await run(n);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  if (firstError) console.error('bench.js:', firstError.message);
  console.log(`bench client=js server=${server} op=${op} mode=${mode} conc=${mode === 'seq' ? 1 : conc}`
    + ` n=${n} seconds=${dt.toFixed(6)} rps=${(n / dt).toFixed(1)}`
    + ` cpu_us=${((c.user + c.system) / n).toFixed(1)} errors=${errors}`);
  process.exit(errors === 0 ? 0 : 1);
})().catch((e) => {
  console.error('bench.js:', e);
  process.exit(1);
});

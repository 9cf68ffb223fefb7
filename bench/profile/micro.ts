/**
 * Micro-measurements behind docs/performance.md, each of one suspect on the hot path, in this process
 * (no I/O): the lossless JSON parse of poll and report bodies (and how often a report body takes its
 * slow path: a lease token is 32 hex digits, and a run of 16 decimal digits in one sends the whole
 * body through the reviver), and the daemon's redaction of every body it sends.
 * `node bench/profile/micro.ts`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { parseJsonLossless } from '../../src/contract/json.ts';
import { redactSecrets, registerSecret } from '../../src/lib/secrets.ts';

const N = 20_000;
const time = (fn: () => unknown, n = N) => {
  for (let i = 0; i < 1000; i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / n / 1000; // µs
};
const token = () => randomBytes(16).toString('hex');
const report = (k: number) =>
  JSON.stringify({
    executor: 'bench',
    reports: Array.from({ length: k }, () => ({
      id: randomUUID(),
      lease_token: token(),
      outcome: 'complete',
      result: { type: 'datasets_truncate_table' },
    })),
  });
const poll = JSON.stringify({
  executor: 'bench',
  data_plane_id: 'dp-bench',
  job_types: ['datasets_truncate_table'],
  capacity: 50,
  wait_ms: 0,
  held: [],
});
const line = (label: string, us: number) =>
  process.stdout.write(`${label.padEnd(72)} ${us.toFixed(2).padStart(8)} µs\n`);

line(
  'JSON.parse, poll body',
  time(() => JSON.parse(poll)),
);
line(
  'parseJsonLossless, poll body',
  time(() => parseJsonLossless(poll)),
);
for (const k of [1, 50]) {
  const bodies = Array.from({ length: 2000 }, () => report(k));
  const slow = bodies.filter((b) => /\d{16}/.test(b));
  const fast = bodies.filter((b) => !/\d{16}/.test(b));
  process.stdout.write(
    `report bodies of ${k} entries: ${((slow.length / bodies.length) * 100).toFixed(1)} % contain a 16-digit run (the reviver's path)\n`,
  );
  let i = 0;
  line(
    `  JSON.parse, report of ${k}`,
    time(() => JSON.parse(bodies[i++ % bodies.length]!)),
  );
  i = 0;
  if (fast.length)
    line(
      `  parseJsonLossless, report of ${k}, fast path`,
      time(() => parseJsonLossless(fast[i++ % fast.length]!)),
    );
  i = 0;
  if (slow.length)
    line(
      `  parseJsonLossless, report of ${k}, reviver path`,
      time(() => parseJsonLossless(slow[i++ % slow.length]!), 2000),
    );
}
const body50 = report(50);
line(
  'redactSecrets(JSON.stringify(report of 50)), no secret registered',
  time(() => redactSecrets(JSON.stringify(JSON.parse(body50)))),
);
registerSecret(token());
registerSecret(`${token()}${token()}`);
line(
  'redactSecrets(JSON.stringify(report of 50)), 2 secrets (6 forms)',
  time(() => redactSecrets(JSON.stringify(JSON.parse(body50)))),
);
line(
  '  of which JSON.stringify + JSON.parse alone',
  time(() => JSON.stringify(JSON.parse(body50))),
);

/**
 * `npm run bench`: the control plane's own throughput, then the daemon's bars (the daemon against the
 * bundled control plane, with BullMQ on Redis as the peer in the same run). Needs `redis-server`
 * (Debian: apt-get install redis-server) and Linux (/proc, taskset).
 */

import { parseArgs } from 'node:util';
import { benchConsole } from './console.ts';
import { benchControlPlane } from './control-plane.ts';
import { benchDaemon } from './daemon.ts';
import { benchIdle } from './idle.ts';
import { benchInference } from './inference.ts';
import { benchLocal } from './local.ts';
import { benchPollCost } from './poll-cost.ts';
import { benchSageMaker } from './sagemaker.ts';
import { benchSnowflake } from './snowflake.ts';
import { benchSoak } from './soak.ts';

// `npm run bench -- local` (or control-plane, daemon, inference) runs only those parts.
// Flags: `--against REV` (control plane: an older revision beside this one, alternating) and
// `--cpu-prof DIR` (control plane: profile the server's drain instead; docs/performance.md).
const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: { against: { type: 'string' }, 'cpu-prof': { type: 'string' } },
});
const only = new Set(positionals);
const want = (part: string) => only.size === 0 || only.has(part);
process.stdout.write(`dataplane-operator bench — ${new Date().toISOString()}, Node ${process.version}\n`);
if (want('control-plane')) {
  await benchControlPlane({
    ...(flags.against ? { against: flags.against } : {}),
    ...(flags['cpu-prof'] ? { cpuProf: flags['cpu-prof'] } : {}),
  });
}
if (want('daemon')) await benchDaemon();
if (want('local')) await benchLocal();
if (want('inference')) await benchInference();
if (want('snowflake')) await benchSnowflake();
if (want('console')) await benchConsole();
if (want('sagemaker')) await benchSageMaker();
if (want('poll-cost')) await benchPollCost();
if (want('idle')) await benchIdle();
if (only.has('soak')) await benchSoak(); // only when named: 30 minutes

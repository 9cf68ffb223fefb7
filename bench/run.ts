/**
 * `npm run bench`: the control plane's own throughput, then the daemon's bars (the daemon against the
 * bundled control plane, with BullMQ on Redis as the peer in the same run). Needs `redis-server`
 * (Debian: apt-get install redis-server) and Linux (/proc, taskset).
 */
import { benchConsole } from './console.ts';
import { benchControlPlane } from './control-plane.ts';
import { benchDaemon } from './daemon.ts';
import { benchInference } from './inference.ts';
import { benchLocal } from './local.ts';
import { benchSageMaker } from './sagemaker.ts';
import { benchSnowflake } from './snowflake.ts';
import { benchSoak } from './soak.ts';

// `npm run bench -- local` (or control-plane, daemon, inference) runs only those parts.
const only = new Set(process.argv.slice(2));
const want = (part: string) => only.size === 0 || only.has(part);
process.stdout.write(`dataplane-operator bench — ${new Date().toISOString()}, Node ${process.version}\n`);
if (want('control-plane')) await benchControlPlane();
if (want('daemon')) await benchDaemon();
if (want('local')) await benchLocal();
if (want('inference')) await benchInference();
if (want('snowflake')) await benchSnowflake();
if (want('console')) await benchConsole();
if (want('sagemaker')) await benchSageMaker();
if (only.has('soak')) await benchSoak(); // only when named: 30 minutes

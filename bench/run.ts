/**
 * `npm run bench`: the control plane's own throughput, then DESIGN §5 (the daemon against the
 * bundled control plane, with BullMQ on Redis as the peer in the same run). Needs `redis-server`
 * (Debian: apt-get install redis-server) and Linux (/proc, taskset).
 */
import { benchControlPlane } from './control-plane.ts';
import { benchDaemon } from './daemon.ts';

process.stdout.write(`dataplane-operator bench — ${new Date().toISOString()}, Node ${process.version}\n`);
await benchControlPlane();
await benchDaemon();

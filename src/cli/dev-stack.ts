/**
 * The one-command local stack behind `dataplane-operator dev`: the bundled control plane on a file
 * database, the local DuckDB data plane with its synthetic datasets, and the daemon, all in one
 * process, plus the example jobs (examples/*.json) submitted in waves. The daemon and its executor
 * are built by the composition root (compose.ts) from the environment, exactly as `run` builds
 * them; this file adds only what a stack on one laptop needs (its own control plane, demo data).
 * It knows the local executor's type, not its module, to seed the demo datasets.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import { validateInput } from '../catalogue/index.ts';
import { UserClient } from '../client/user-client.ts';
import { isTerminal, type Job, SubmitJobRequest } from '../contract/index.ts';
import { parseJsonLossless } from '../contract/json.ts';
import { FOLLOW_UP_TYPES, followUpsOf } from '../control-plane/follow-ups.ts';
import { type RunningControlPlane, startControlPlane } from '../control-plane/server.ts';
import type { LocalExecutor } from '../daemon/builtin-executors.ts';
import { loadDaemonConfig } from '../daemon/config.ts';
import type { Daemon } from '../daemon/daemon.ts';
import type { OpsServer } from '../daemon/ops-server.ts';
import type { Executor } from '../executor/index.ts';
import type { Env } from '../lib/config.ts';
import { sleep } from '../lib/retry.ts';
import { closeClient, composeDaemon, startDaemonOps } from './compose.ts';
import { DEV_DATA_PLANE_ID } from './control-plane.ts';

export interface DevStackOptions {
  /**
   * The environment (env files merged, `dev`'s defaults below, its flags applied): the daemon and
   * the local executor read their settings from it, as under `run`.
   */
  env: Env;
  /** The data directory, absolute. */
  dataDir: string;
  cpHost: string;
  cpPort: number;
  adminToken: string;
  operatorToken: string;
  rows: number;
  logger: Logger;
}

export interface DevStack {
  cp: RunningControlPlane;
  ops: OpsServer | undefined;
  executor: LocalExecutor;
  daemon: Daemon;
  user: UserClient;
  seeded: Array<{ datasetId: number; rows: number; created: boolean }>;
  /** Drains the daemon (jobs finish or are released), then closes everything. Idempotent. */
  stop(): Promise<void>;
}

/** The local executor among those enabled: `dev` seeds its demo datasets before the daemon starts. */
function isLocalExecutor(e: Executor): e is LocalExecutor {
  return e.name === 'local' && typeof (e as Partial<LocalExecutor>).seedDemoData === 'function';
}

/**
 * Starts the control plane, builds the daemon through the composition root, seeds the local data
 * plane, then starts the health server and the daemon. A ConfigError names the variable at fault.
 */
export async function startDevStack(o: DevStackOptions): Promise<DevStack> {
  const log = o.logger;
  // Started in order; a failure on the way closes what was started and says what failed.
  const opened: Array<() => Promise<void>> = [];
  const unwind = async () => {
    for (const close of opened.reverse()) await close().catch(() => undefined);
  };
  try {
    let cp: RunningControlPlane;
    try {
      cp = await startControlPlane({
        dbPath: join(o.dataDir, 'control-plane.db'),
        host: o.cpHost,
        port: o.cpPort,
        adminTokens: [o.adminToken],
        operatorTokens: [{ token: o.operatorToken, data_plane_id: DEV_DATA_PLANE_ID, name: 'dev-operator' }],
        retryBaseMs: 1_000,
        retryMaxMs: 30_000,
        logger: log.child({ component: 'control-plane' }),
      });
    } catch (err) {
      throw listenError(err, `${o.cpHost}:${o.cpPort}`, '--listen or DPO_CP_LISTEN');
    }
    opened.push(() => cp.close());
    // What this stack is, whatever the environment says: the daemon talks to the control plane
    // just started, with the operator token it knows, for the data plane that token is bound to,
    // on the local data plane under this data directory.
    const env: Env = {
      ...o.env,
      DPO_CONTROL_PLANE_URL: cp.url,
      DPO_TOKEN: o.operatorToken,
      DPO_TOKEN_FILE: undefined,
      DPO_DATA_PLANE_ID: DEV_DATA_PLANE_ID,
      // A model server of the user's own, when configured, runs model_inference_run beside DuckDB.
      DPO_EXECUTORS: o.env.DPO_OPENAI_COMPAT_BASE_URL ? 'local,openai-compatible' : 'local',
      DPO_DATA_DIR: o.dataDir,
    };
    const composed = await composeDaemon(loadDaemonConfig(env), env, log.child({ component: 'daemon' }));
    const { daemon, config } = composed;
    const executor = composed.registry.executors.find(isLocalExecutor);
    if (!executor) throw new Error('the local executor did not load');
    opened.push(() => executor.close());
    const seeded = await executor.seedDemoData(o.rows);
    opened.push(() => closeClient(composed));
    let ops: OpsServer | undefined;
    try {
      ops = await startDaemonOps(composed);
    } catch (err) {
      const listen = config.DPO_METRICS_LISTEN;
      const address = listen === 'off' ? 'off' : `${listen.host}:${listen.port}`;
      throw listenError(err, address, 'DPO_METRICS_LISTEN (or off)');
    }
    if (ops) {
      const opsServer = ops;
      opened.push(() => opsServer.close());
    }
    await daemon.start();
    const user = new UserClient({ url: cp.url, token: o.adminToken });
    let stopping: Promise<void> | undefined;
    return {
      cp,
      ops,
      executor,
      daemon,
      user,
      seeded,
      stop() {
        stopping ??= (async () => {
          await daemon.drain(config.DPO_DRAIN_TIMEOUT_MS);
          await daemon.stopped;
          await closeClient(composed);
          await user.close();
          await ops?.close();
          await cp.close();
          await executor.close();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/** An address already taken is the usual reason a local stack cannot start: say which and how. */
function listenError(err: unknown, address: string, setting: string): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new Error(
      `${address} is already in use (another dev or control plane?); choose another with ${setting}`,
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}

// ---------------------------------------------------------------------------------------------
// Examples
// ---------------------------------------------------------------------------------------------

export interface Example {
  /** File name without `.json`, e.g. `1-forecast`. */
  name: string;
  /** The leading number: waves run in order, each after the previous one ended. */
  wave: number;
  request: SubmitJobRequest;
  /**
   * The idempotency key `dev` submits it with: its name and a digest of its content, so a second
   * `dev` finds the job of the first, and an edited example is a new job.
   */
  key: string;
}

/** A digest of a submission that does not depend on the order of its keys. */
function contentDigest(value: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v as object)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  return createHash('sha256')
    .update(JSON.stringify(canonical(value)))
    .digest('hex')
    .slice(0, 16);
}

/**
 * Reads examples/*.json (each a job submission, its input valid for its type); a file that is not one
 * is an error naming the file and each field at fault.
 */
export function loadExamples(dir: string): Example[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  return files.map((file) => {
    const name = basename(file, '.json');
    const path = join(dir, file);
    let doc: unknown;
    try {
      doc = parseJsonLossless(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new Error(`${path} is not valid JSON: ${(err as Error).message}`);
    }
    const parsed = SubmitJobRequest.safeParse(doc);
    if (!parsed.success) {
      const fields = parsed.error.issues.map(
        (i) => `${i.path.map(String).join('.') || '(the file)'}: ${i.message}`,
      );
      throw new Error(`${path} is not a job submission:\n  ${fields.join('\n  ')}`);
    }
    const input = validateInput(parsed.data.type, parsed.data.input);
    if (!input.ok) {
      const fields = input.issues.map((i) =>
        i.code === 'unknown_job_type'
          ? `type: ${i.message}`
          : `${i.path ? `input.${i.path}` : 'input'}: ${i.message}`,
      );
      throw new Error(`${path} is not a valid ${parsed.data.type} job:\n  ${fields.join('\n  ')}`);
    }
    const wave = Number(/^(\d+)-/.exec(name)?.[1] ?? 1);
    return { name, wave, request: parsed.data, key: `dev-example:${name}:${contentDigest(parsed.data)}` };
  });
}

export interface TrackedJob {
  /** The example's name, or `<parent> → <type>` for a follow-up the control plane created. */
  label: string;
  job: Job;
}

const terminal = (j: Job) => isTerminal(j.state);

/** Whether the control plane creates a follow-up of `j` (its own rules: follow-ups.ts). */
function expectsFollowUp(j: Job): boolean {
  return j.state === 'completed' && followUpsOf({ ...j, result: j.result ?? {} }, new Date(0)).length > 0;
}

/**
 * Submits the examples wave by wave, each with an idempotency key naming it (so a second `dev` finds
 * the jobs of the first instead of duplicating them), and follows them and their follow-ups until all
 * are terminal. `onUpdate` gets the whole list after every refresh.
 */
export async function runExamples(
  user: UserClient,
  examples: readonly Example[],
  onUpdate: (jobs: readonly TrackedJob[]) => void,
  signal: AbortSignal,
  pollMs = 200,
): Promise<TrackedJob[]> {
  const tracked = new Map<string, TrackedJob>();
  const waves = [...new Set(examples.map((e) => e.wave))].sort((a, b) => a - b);
  const adopt = (j: Job) => {
    const t = tracked.get(j.id);
    if (t) {
      t.job = j;
      return;
    }
    const src = j.request_source;
    if (src.type === 'job' && tracked.has(src.job_id)) {
      const short = j.type === 'materialized_views_collect_access_rules_billing_data' ? 'billing' : j.type;
      tracked.set(j.id, { label: `${(tracked.get(src.job_id) as TrackedJob).label} → ${short}`, job: j });
    }
  };
  const hasChild = (parent: Job) =>
    [...tracked.values()].some(
      (c) => c.job.request_source.type === 'job' && c.job.request_source.job_id === parent.id,
    );
  const refresh = async () => {
    // The newest jobs in one call; a tracked job older than that page (a data plane with a long
    // history, a second `dev`) is fetched by id.
    const page = await user.list({ data_plane_id: DEV_DATA_PLANE_ID, per_page: 200 }, signal);
    const seen = new Set(page.jobs.map((j) => j.id));
    for (const j of page.jobs) adopt(j);
    for (const t of [...tracked.values()]) {
      if (!seen.has(t.job.id) && !terminal(t.job)) t.job = await user.get(t.job.id, signal);
    }
    // Follow-ups of parents that ended before that page: walk back through the follow-up types
    // until the jobs are older than the oldest such parent.
    const orphans = [...tracked.values()].filter((t) => expectsFollowUp(t.job) && !hasChild(t.job));
    if (orphans.length > 0) {
      const since = Math.min(...orphans.map((t) => Date.parse(t.job.ended_at ?? t.job.updated_at)));
      let cursor: string | undefined;
      for (let pages = 0; pages < 50; pages++) {
        const older = await user.list(
          { data_plane_id: DEV_DATA_PLANE_ID, type: FOLLOW_UP_TYPES.join(','), per_page: 200, cursor },
          signal,
        );
        for (const j of older.jobs) adopt(j);
        const last = older.jobs.at(-1);
        if (!older.next_cursor || !last || Date.parse(last.created_at) < since) break;
        cursor = older.next_cursor;
      }
    }
    onUpdate([...tracked.values()]);
  };
  const settled = () =>
    [...tracked.values()].every((t) => terminal(t.job) && (!expectsFollowUp(t.job) || hasChild(t.job)));
  for (const wave of waves) {
    for (const e of examples.filter((x) => x.wave === wave)) {
      const { job } = await user.submit({ ...e.request, idempotency_key: e.key }, signal);
      tracked.set(job.id, { label: e.name, job });
    }
    onUpdate([...tracked.values()]);
    for (;;) {
      await refresh();
      if (settled()) break;
      await sleep(pollMs, signal);
    }
  }
  return [...tracked.values()];
}

/**
 * Prometheus metrics of one daemon (prom-client, its own registry so several daemons can live in
 * one process in tests). Labels are low-cardinality only: job type, executor name, outcome, path, and
 * a failure code bounded by MAX_FAILURE_CODES.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { packageVersion } from '../lib/version.ts';

/**
 * How often the event loop's delay is sampled (ms). Sampling costs a wakeup each time: on this
 * project's VMs every 20 ms cost 0.55 % of a core when idle (the bar is 0.2 %), every second 0.1 %.
 * So the daemon samples once a second while it holds no job, and every 20 ms while it holds some,
 * when lag matters (leases, progress, cancels) and the cost is small next to the jobs' own: a short
 * block while work runs is then seen, not only one that happens to span a once-a-second sample.
 */
const LAG_RESOLUTION_MS = 1_000;
const LAG_BUSY_RESOLUTION_MS = 20;
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Event-loop lag as an operator reads it, as a Prometheus histogram: each sample is one timer armed
 * for the sampling interval, and its lag is how late it fired beyond that interval (an idle loop reads
 * ~0, a loop blocked for 300 ms reads ~0.3 s). Every sample is measured from its own timer's arming,
 * so switching between the idle and the busy interval never counts the idle time as lag: Node's
 * delay histogram, disabled between busy phases and enabled again, measured its first sample from
 * the timestamp it kept (it read 50 s after an idle spell). `dpo_event_loop_lag_max_seconds` is the
 * largest sample since the previous scrape. The timer is unref'd: it never keeps a process alive.
 */
function eventLoopLag(registers: Registry[], idleMs: number, busyMs: number) {
  const histogram = new Histogram({
    name: 'dpo_event_loop_lag_seconds',
    help: `Event-loop lag: how late a sampling timer fired beyond its interval (${busyMs} ms while jobs are held, else ${idleMs} ms)`,
    buckets: LAG_BUCKETS,
    registers,
  });
  let max = 0;
  new Gauge({
    name: 'dpo_event_loop_lag_max_seconds',
    help: 'The largest event-loop lag sample since the previous scrape',
    registers,
    collect() {
      this.set(max);
      max = 0;
    },
  });
  let busy = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const interval = busy ? busyMs : idleMs;
    const armedAt = performance.now();
    timer = setTimeout(() => {
      const lag = Math.max(0, (performance.now() - armedAt - interval) / 1000);
      histogram.observe(lag);
      if (lag > max) max = lag;
      arm();
    }, interval);
    timer.unref();
  };
  arm();
  return {
    histogram,
    /** Dense sampling while the daemon holds jobs, sparse otherwise (the pending sample is re-armed). */
    setBusy(next: boolean): void {
      if (next === busy) return;
      busy = next;
      clearTimeout(timer);
      arm();
    },
    get dense(): boolean {
      return busy;
    },
    stop(): void {
      clearTimeout(timer);
    },
  };
}

/**
 * prom-client's default event-loop series (`*_nodejs_eventloop_lag_*`) come from Node's delay
 * histogram, whose samples include its own sampling interval: an idle process reads the interval
 * (1 s here) as lag. They are not exported; dpo_event_loop_lag_seconds is the true reading.
 */
const UNTRUE_DEFAULT_SERIES = /^dpo_nodejs_eventloop_lag_/;

/**
 * The `code` label of dpo_job_failures_total stays bounded: a failure code is UPPER_SNAKE_CASE by
 * contract and the executors use a few dozen; the first MAX_FAILURE_CODES distinct codes a daemon sees
 * are labels, anything else (and anything malformed) is `OTHER`.
 */
export const MAX_FAILURE_CODES = 64;

function failureCodes(): (code: string) => string {
  const seen = new Set<string>();
  return (code) => {
    if (!/^[A-Z][A-Z0-9_]{0,63}$/.test(code)) return 'OTHER';
    if (seen.has(code)) return code;
    if (seen.size >= MAX_FAILURE_CODES) return 'OTHER';
    seen.add(code);
    return code;
  };
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DURATION_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600];

export function createMetrics(
  options: { defaultMetrics?: boolean; lagResolutionMs?: number; lagBusyResolutionMs?: number } = {},
) {
  const registry = new Registry();
  if (options.defaultMetrics !== false)
    collectDefaultMetrics({
      register: registry,
      prefix: 'dpo_',
      eventLoopMonitoringPrecision: LAG_RESOLUTION_MS,
    });
  for (const m of registry.getMetricsAsArray())
    if (UNTRUE_DEFAULT_SERIES.test(m.name)) registry.removeSingleMetric(m.name);
  const registers = [registry];
  const lagMonitor =
    options.defaultMetrics !== false
      ? eventLoopLag(
          registers,
          options.lagResolutionMs ?? LAG_RESOLUTION_MS,
          options.lagBusyResolutionMs ?? LAG_BUSY_RESOLUTION_MS,
        )
      : undefined;
  const heldGauge = new Gauge({
    name: 'dpo_jobs_held',
    help: 'Jobs whose lease this daemon holds',
    registers,
  });
  new Gauge({
    name: 'dpo_build_info',
    help: 'Always 1; the labels say which build runs',
    labelNames: ['version', 'node_version'] as const,
    registers,
  }).set({ version: packageVersion(), node_version: process.versions.node }, 1);
  /** Set by the daemon's ops server: whether the control plane answered recently. */
  const probes: { controlPlaneReachable?: () => boolean } = {};
  new Gauge({
    name: 'dpo_control_plane_reachable',
    help: '1 when the control plane answered a poll within the readiness window, else 0',
    registers,
    collect() {
      if (probes.controlPlaneReachable) this.set(probes.controlPlaneReachable() ? 1 : 0);
    },
  });
  return {
    registry,
    probes,
    /** The bounded `code` label for a failure code. */
    failureCode: failureCodes(),
    failures: new Counter({
      name: 'dpo_job_failures_total',
      help: `Jobs failed, by failure code (the first ${MAX_FAILURE_CODES} distinct codes; the rest OTHER)`,
      labelNames: ['job_type', 'executor', 'code'] as const,
      registers,
    }),
    resultFailures: new Counter({
      name: 'dpo_job_result_failures_total',
      help: 'Jobs completed with a result that reports a failure (nql-forecast {type: "Failure"}); also counted as complete in dpo_job_outcomes_total',
      labelNames: ['job_type', 'executor'] as const,
      registers,
    }),
    ...(lagMonitor ? { eventLoopLag: lagMonitor } : {}),
    claimed: new Counter({
      name: 'dpo_jobs_claimed_total',
      help: 'Jobs claimed from the control plane',
      labelNames: ['job_type', 'executor'] as const,
      registers,
    }),
    outcomes: new Counter({
      name: 'dpo_job_outcomes_total',
      help: 'Job outcomes: complete, fail, cancelled, release, forget (lease lost)',
      labelNames: ['job_type', 'executor', 'outcome'] as const,
      registers,
    }),
    duration: new Histogram({
      name: 'dpo_job_duration_seconds',
      help: 'Time from dispatch to outcome',
      labelNames: ['job_type', 'executor', 'outcome'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    }),
    pickup: new Histogram({
      name: 'dpo_job_pickup_seconds',
      help: 'Time from job creation to the executor starting it',
      labelNames: ['job_type', 'executor'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    inFlight: new Gauge({
      name: 'dpo_jobs_in_flight',
      help: 'Jobs queued or running in an executor',
      labelNames: ['executor'] as const,
      registers,
    }),
    /** Jobs held; the lag monitor samples densely while there are some. */
    held: {
      set(n: number): void {
        heldGauge.set(n);
        lagMonitor?.setBusy(n > 0);
      },
    },
    capacity: new Gauge({ name: 'dpo_capacity', help: 'Configured concurrency', registers }),
    requests: new Histogram({
      name: 'dpo_control_plane_request_seconds',
      help: 'Control-plane requests by path and outcome',
      labelNames: ['path', 'outcome'] as const,
      buckets: [...LATENCY_BUCKETS, 30, 60],
      registers,
    }),
    retries: new Counter({
      name: 'dpo_control_plane_retries_total',
      help: 'Control-plane requests retried after a transient failure',
      labelNames: ['path'] as const,
      registers,
    }),
    leasesLost: new Counter({
      name: 'dpo_leases_lost_total',
      help: 'Held jobs the control plane said were lost',
      registers,
    }),
    cancelLatency: new Histogram({
      name: 'dpo_cancel_latency_seconds',
      help: 'Time from a cancel reaching the daemon to the executor having stopped',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    logLinesDropped: new Counter({
      name: 'dpo_job_log_lines_dropped_total',
      help: 'Job log lines not shipped because a job logged too much',
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

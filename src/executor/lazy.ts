/**
 * An executor whose implementation (and the SDKs it imports) loads on its first job instead of at
 * startup: an idle daemon does not carry the AWS SDK's clients and models (~10–30 MB resident per
 * executor). The module still validates its configuration at startup (before calling this), so a bad
 * variable fails the daemon at once; only the import and the construction wait.
 */
import type { ExecuteContext, Executor, JobHandle } from './index.ts';

export function lazyExecutor(
  name: string,
  jobTypes: readonly string[],
  load: () => Promise<Executor>,
): Executor & { readonly loaded: boolean } {
  let loading: Promise<Executor> | undefined;
  const get = (): Promise<Executor> => {
    if (loading === undefined) {
      const p = load().then(async (e) => {
        await e.start?.();
        return e;
      });
      loading = p;
      // A failed load (a module that cannot start) is tried again by the next job.
      p.catch(() => {
        if (loading === p) loading = undefined;
      });
    }
    return loading;
  };
  return {
    name,
    jobTypes,
    get loaded() {
      return loading !== undefined;
    },
    async execute(job: JobHandle, ctx: ExecuteContext): Promise<unknown> {
      return (await get()).execute(job, ctx);
    },
    async close(): Promise<void> {
      const p = loading;
      loading = undefined;
      const e = await p?.catch(() => undefined);
      await e?.close?.();
    },
  };
}

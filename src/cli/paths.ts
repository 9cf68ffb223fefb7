/**
 * Durations as the user types them on the command line. (Paths: `userPath` in src/lib/config.ts.)
 */

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration from the command line in milliseconds: `1500` (ms), `500ms`, `5s`, `2m`, `1h`, `1d`, or a
 * sum such as `1m30s`. Throws a RangeError naming the accepted forms.
 */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) {
    throw new RangeError(`'${text}' is not a duration (e.g. 500ms, 5s, 2m, 1h, 1m30s, or milliseconds)`);
  }
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * (UNITS[p[2] as string] as number), 0));
}

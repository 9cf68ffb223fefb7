/** Did-you-mean for misspelt names (variables, job types): the nearest candidate, when it is close. */

/** Levenshtein distance. */
export function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0] as number;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j] as number;
      d[j] = Math.min((d[j] as number) + 1, (d[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length] as number;
}

/**
 * ` (did you mean X?)` for the nearest of `candidates` within `max` edits, or the one that `name`
 * begins (a name cut short: `datasets_truncate`), else ''.
 */
export function didYouMean(name: string, candidates: Iterable<string>, max = 3): string {
  const all = [...candidates];
  const near = all.map((k) => [k, distance(name, k)] as const).sort((a, b) => a[1] - b[1])[0];
  if (near && near[1] <= max) return ` (did you mean ${near[0]}?)`;
  const longer = name.length >= 4 ? all.filter((k) => k.startsWith(name)) : [];
  return longer.length === 1 ? ` (did you mean ${longer[0]}?)` : '';
}

/**
 * `dev`'s examples and display: an edited example is a new job (its idempotency key carries a digest
 * of its content), a malformed one names its file and field, the live table fits the terminal, and
 * counts are written one way.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { devTable } from '../src/cli/dev.ts';
import { loadExamples } from '../src/cli/dev-stack.ts';
import { count, outcomeSummary } from '../src/cli/format.ts';
import type { Job } from '../src/contract/index.ts';

const EXAMPLES = join(import.meta.dirname, '..', 'examples');
const copy = () => {
  const dir = mkdtempSync(join(tmpdir(), 'dpo-examples-'));
  cpSync(EXAMPLES, dir, { recursive: true });
  return dir;
};

describe('examples', () => {
  it('keep their key while unchanged (key order aside), and get a new one once edited', () => {
    const dir = copy();
    const before = new Map(loadExamples(dir).map((e) => [e.name, e.key]));
    const file = join(dir, '1-nql-forecast.json');
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    // The same content, keys in another order: the same job.
    writeFileSync(file, JSON.stringify(Object.fromEntries(Object.entries(doc).reverse()), null, 2));
    const reordered = new Map(loadExamples(dir).map((e) => [e.name, e.key]));
    expect(reordered).toEqual(before);
    // An edit: a new job, and only for that example.
    writeFileSync(file, JSON.stringify({ ...doc, company_id: doc.company_id + 1 }, null, 2));
    const edited = new Map(loadExamples(dir).map((e) => [e.name, e.key]));
    expect(edited.get('1-nql-forecast')).not.toBe(before.get('1-nql-forecast'));
    expect(edited.get('1-nql-forecast')).toMatch(/^dev-example:1-nql-forecast:[0-9a-f]{16}$/);
    for (const [name, key] of before) if (name !== '1-nql-forecast') expect(edited.get(name)).toBe(key);
  });

  it('a malformed example names its file and each field at fault', () => {
    const dir = copy();
    const file = join(dir, '1-nql-forecast.json');
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...doc, company_id: 'fifty-six' }));
    expect(() => loadExamples(dir)).toThrow(
      new RegExp(`${file} is not a job submission:\\n {2}company_id: `),
    );
    writeFileSync(file, JSON.stringify({ ...doc, input: { ...doc.input, compiled_sql: 42 } }));
    expect(() => loadExamples(dir)).toThrow(
      new RegExp(`${file} is not a valid nql-forecast job:\\n {2}input\\.`),
    );
    writeFileSync(file, '{"type": ');
    expect(() => loadExamples(dir)).toThrow(`${file} is not valid JSON`);
  });
});

describe('the live table', () => {
  const job = (over: Partial<Job>): Job =>
    ({
      id: '00000000-0000-4000-8000-000000000000',
      type: 'datasets_execute_dml',
      state: 'completed',
      progress: null,
      result: { type: 'datasets_execute_dml', affected_rows: 1234567 },
      failures: [],
      ...over,
    }) as unknown as Job;

  it('fits the terminal, however long the labels and summaries', () => {
    const rows = devTable(
      [
        { label: `3-${'very-long-example-name-'.repeat(6)}`, job: job({}) },
        {
          label: '1-dml',
          job: job({ state: 'failed', failures: [{ code: 'X', message: 'm'.repeat(500) } as never] }),
        },
      ],
      60,
    );
    for (const r of rows) expect(r.length).toBeLessThanOrEqual(59);
    expect(rows[0]).toContain('…');
    // Columns stay aligned: the state starts at the same place on every row.
    expect(rows[0]!.indexOf('completed')).toBe(rows[1]!.indexOf('failed'));
  });

  it('writes counts one way: thousands separated, 64-bit decimal strings too', () => {
    expect([count(2_000_000), count('9007199254740993'), count(12)]).toEqual([
      '2,000,000',
      '9,007,199,254,740,993',
      '12',
    ]);
    expect(outcomeSummary(job({}))).toBe('1,234,567 rows affected');
  });
});

/** Building blocks shared by the job type schemas. */
import { z } from 'zod';

export const Id = z.number().int().nonnegative();
export const Count = z.number().int().nonnegative();
export const Sql = z.string().trim().min(1, 'must not be empty');
export const Timestamp = z.iso.datetime({ offset: true });
export const MicroCents = z.looseObject({ micro_cents_usd: z.number().int().nonnegative() });

/**
 * An ISO 8601 duration (`P30D`, `PT12H`, `P1Y2M`, `P2W`), capturing years, months, weeks, days,
 * hours, minutes and seconds. At least one unit, and a `T` only before a time unit. The one
 * definition: the input schemas validate with it and the forecast rules parse with it.
 */
export const ISO_DURATION =
  /^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** ISO 8601 duration, e.g. `P30D`, `PT12H`, `P1Y2M`. */
export const IsoDuration = z.string().regex(ISO_DURATION, 'must be an ISO 8601 duration such as P30D');

/** A JSON object (keys not constrained). */
export const JsonObject = z.record(z.string(), z.unknown());

/**
 * Large identifiers such as Iceberg snapshot ids exceed 2^53; JSON carries them as numbers that
 * JavaScript rounds. Accept any non-negative integer-valued number, or a digit string.
 */
export const BigId = z.union([
  z.number().nonnegative().refine(Number.isInteger, 'must be an integer'),
  z.string().regex(/^\d+$/),
]);

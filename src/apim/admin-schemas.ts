// Request bodies of the management API (Apigee's field names), validated with zod.
import { z } from 'zod';
import { resourceName } from '../config/manifest.js';

const attributes = z.array(z.object({ name: z.string().min(1), value: z.string() }).strict()).max(100);

/** More products than this on one app or key is a mistake; each name is also one lookup in the store. */
const MAX_PRODUCTS = 1000;

/**
 * API product names in the app's order (the first whose operation set covers a request decides). Repeats are refused
 * where unknown names are (new-key.ts grantsFor), so one answer lists both.
 */
const productNames = z.array(z.string().min(1)).max(MAX_PRODUCTS);

export const productBody = z
  .object({
    name: resourceName,
    displayName: z.string().min(1).optional(),
    description: z.string().optional(),
    approvalType: z.enum(['auto', 'manual']).optional(),
    attributes: attributes.optional(),
  })
  .strict();

/** PUT replaces: fields left out return to their defaults; `name`, when given, must be the one in the path. */
export const productReplaceBody = productBody.extend({ name: resourceName.optional() });

export const developerBody = z
  .object({
    email: z.email().max(254),
    firstName: z.string().optional(),
    lastName: z.string().optional(),
    userName: z.string().optional(),
    attributes: attributes.optional(),
  })
  .strict();

/** PUT replaces the profile; `email`, when given, renames the developer. */
export const developerReplaceBody = developerBody.extend({ email: z.email().max(254).optional() });

/** Beyond this a date is not representable, and no key should outlive it anyway. */
const HUNDRED_YEARS_S = 100 * 365 * 24 * 3600;

/**
 * A key's lifetime as Apigee takes it (an app's keyExpiresIn in milliseconds, a key's expiresInSeconds): an int64, a
 * number or a numeric string; -1 or absent for a key that never expires. Migration scripts send Apigee's own answers.
 * One message for every way it is wrong (a fraction, `"1e3"`, a boolean, too large), saying what it takes.
 */
function keyLifetime(unit: 'milliseconds' | 'seconds', hundredYears: number) {
  const error = `must be a whole number of ${unit} from 1 to ${hundredYears} (100 years), as a number or a string of digits, or -1 for never`;
  return z.preprocess(
    (v) => (typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v),
    z.number({ error }).refine((n) => n === -1 || (Number.isInteger(n) && n > 0 && n <= hundredYears), { error }),
  );
}

export const appBody = z
  .object({
    name: resourceName,
    apiProducts: productNames.default([]),
    attributes: attributes.optional(),
    callbackUrl: z.string().optional(),
    keyExpiresIn: keyLifetime('milliseconds', HUNDRED_YEARS_S * 1000).optional(),
  })
  .strict();

/** PUT replaces attributes and callbackUrl; `apiProducts`, when given, becomes the product list of every key of the app. */
export const appReplaceBody = z
  .object({
    name: resourceName.optional(),
    apiProducts: productNames.optional(),
    attributes: attributes.optional(),
    callbackUrl: z.string().optional(),
  })
  .strict();

/** Imported keys and secrets are checked for length and characters only: they were generated elsewhere. */
const importedSecret = z
  .string()
  .min(16, 'must be at least 16 characters')
  .max(256)
  // Sent in a header, also as `Authorization: Bearer`: a space would split it there.
  .regex(/^[\x21-\x7e]+$/, 'must be visible ASCII characters, without spaces');

/** An imported key must also read as a key in `Authorization: Bearer`, where a three-part dotted token is a JWT and tgat_ an access token. */
const importedKey = importedSecret.refine((k) => !k.startsWith('tgat_') && !/^[^.]*\.[^.]*\.[^.]*$/.test(k), 'must not look like a JWT (three dotted parts) or an access token (tgat_)');

/** A new key for an app: generated, or imported when `consumerKey` is given (for teams migrating existing keys). */
export const keyBody = z
  .object({
    apiProducts: productNames.optional(),
    expiresInSeconds: keyLifetime('seconds', HUNDRED_YEARS_S).optional(),
    consumerKey: importedKey.optional(),
    consumerSecret: importedSecret.optional(),
  })
  .strict()
  .refine((b) => b.consumerSecret === undefined || b.consumerKey !== undefined, {
    path: ['consumerSecret'],
    message: 'is imported together with a consumerKey',
  });

/** `GET /v1/audit`'s filters, a query shape (admin-input.ts readQuery). */
export const auditQuery = {
  resourceType: z.string().min(1).optional(),
  resourceName: z.string().min(1).optional(),
};

// Request bodies of the management API (Apigee's field names), validated with zod.
import { z } from 'zod';
import { resourceName } from '../config/manifest.js';

const attributes = z.array(z.object({ name: z.string().min(1), value: z.string() }).strict()).max(100);

/** More products than this on one app or key is a mistake; each name is also one lookup in the store. */
const MAX_PRODUCTS = 1000;

/**
 * API product names in the app's order (the first whose operation set covers a request decides); no repeats.
 * Repeats are found with a Set: indexOf per name was quadratic, and a 2 MB list held the event loop for seconds.
 */
const productNames = z
  .array(z.string().min(1))
  .max(MAX_PRODUCTS)
  .superRefine((names, ctx) => {
    const seen = new Set<string>();
    names.forEach((name, i) => {
      if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [i], message: `"${name}" is listed twice` });
      seen.add(name);
    });
  });

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
 */
function keyLifetime(unit: 'milliseconds' | 'seconds', hundredYears: number) {
  return z
    .union([z.number().int(), z.string().regex(/^-?\d+$/, `must be a whole number of ${unit}`).transform(Number)])
    .refine((n) => n === -1 || (n > 0 && n <= hundredYears), `must be a positive number of ${unit} (up to 100 years), or -1 for never`);
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

// Request bodies of the management API (Apigee's field names), validated with zod.
import { z } from 'zod';
import { isoTime } from '../config/apim-kinds.js';
import { resourceName } from '../config/manifest.js';
import type { CredentialStatus } from '../store/index.js';

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

const credentialStatus = z.enum(['approved', 'pending', 'revoked'] as const satisfies readonly CredentialStatus[]);

/**
 * Imported keys and secrets are checked for length and characters only: they were generated elsewhere. The minimum
 * stays, whatever the source allowed: a shorter key is guessable.
 */
const importedSecret = (what: 'key' | 'secret') =>
  z
    .string()
    .min(16, `must be at least 16 characters: a shorter legacy ${what} cannot be imported and must be rotated`)
    .max(256)
    // Sent in a header, also as `Authorization: Bearer`: a space would split it there.
    .regex(/^[\x21-\x7e]+$/, 'must be visible ASCII characters, without spaces');

/** An imported key must also read as a key in `Authorization: Bearer`, where a three-part dotted token is a JWT and tgat_ an access token. */
const importedKey = importedSecret('key').refine((k) => !k.startsWith('tgat_') && !/^[^.]*\.[^.]*\.[^.]*$/.test(k), 'must not look like a JWT (three dotted parts) or an access token (tgat_)');

/** Before this, a key's date is most likely epoch seconds sent where milliseconds belong. */
const YEAR_2000_MS = Date.UTC(2000, 0, 1);

/** How far ahead of this replica's clock an imported issuedAt may be: the exporting system's clock may run ahead. */
const ISSUED_AT_SKEW_MS = 5 * 60_000;

/**
 * A key's date as exports carry it, read as epoch milliseconds: epoch milliseconds (Apigee's; Apigee X writes the
 * int64 as a string of digits) or an ISO-8601 date and time (LiteLLM's; without a zone UTC, as manifests read one).
 * `latest` is read when the body is.
 */
function keyDate(latest: () => number, tooLate: string, never = '') {
  const error = `must be epoch milliseconds (a number or a string of digits) or an ISO-8601 date and time${never}`;
  return z.union([z.number(), z.string()], { error }).transform((v, ctx) => {
    const iso = typeof v === 'string' && !/^\d+$/.test(v) ? isoTime.safeParse(v) : undefined;
    const ms = iso ? (iso.success ? Date.parse(iso.data) : NaN) : Number(v);
    if (!Number.isSafeInteger(ms)) ctx.addIssue({ code: 'custom', message: error });
    else if (ms < YEAR_2000_MS) ctx.addIssue({ code: 'custom', message: 'is before the year 2000: epoch seconds where milliseconds belong?' });
    else if (ms > latest()) ctx.addIssue({ code: 'custom', message: tooLate });
    else return ms;
    return z.NEVER;
  });
}

/** Apigee's -1, and LiteLLM's null, for a key that never expires. */
const expiryDate = z.preprocess(
  (v) => (v === -1 || v === '-1' ? null : v),
  keyDate(() => Date.now() + HUNDRED_YEARS_S * 1000, 'is more than 100 years ahead', ', or -1 or null for never').nullable(),
);

/** A key's product as Apigee exports it, `{apiproduct, status}`: on import, the grant keeps that status. */
const productGrant = z.object({ apiproduct: z.string().min(1), status: credentialStatus }).strict();

const keyProducts = z
  .array(
    z.union([z.string().min(1), productGrant], {
      error: (iss) => (typeof iss.input === 'object' && iss.input !== null ? 'must be {apiproduct, status}, status one of approved, pending, revoked' : 'must be an API product name'),
    }),
  )
  .max(MAX_PRODUCTS);

/** What only an imported key takes: a generated key starts approved, now, with its products' default status. */
const IMPORT_ONLY = ['consumerSecret', 'status', 'expiresAt', 'issuedAt'] as const;

/**
 * A new key for an app: generated, or imported when `consumerKey` is given (for teams migrating existing keys, with
 * the status, product grants and dates the key had at its source).
 */
export const keyBody = z
  .object({
    apiProducts: keyProducts.optional(),
    expiresInSeconds: keyLifetime('seconds', HUNDRED_YEARS_S).optional(),
    consumerKey: importedKey.optional(),
    consumerSecret: importedSecret('secret').optional(),
    status: credentialStatus.optional(),
    expiresAt: expiryDate.optional(),
    issuedAt: keyDate(() => Date.now() + ISSUED_AT_SKEW_MS, 'is in the future').optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.consumerKey === undefined) {
      for (const field of IMPORT_ONLY) if (b[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'is imported together with a consumerKey' });
      b.apiProducts?.forEach((p, i) => {
        if (typeof p !== 'string') ctx.addIssue({ code: 'custom', path: ['apiProducts', i], message: 'takes a status only on import (with a consumerKey): give the name alone' });
      });
    }
    if (b.expiresAt !== undefined && b.expiresInSeconds !== undefined) {
      for (const field of ['expiresAt', 'expiresInSeconds']) ctx.addIssue({ code: 'custom', path: [field], message: 'expiresAt and expiresInSeconds exclude each other: give one' });
    }
    if (b.issuedAt !== undefined && b.expiresAt != null && b.expiresAt < b.issuedAt) ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'is before issuedAt' });
  });

export type KeyBody = z.output<typeof keyBody>;

/** `GET /v1/audit`'s filters, a query shape (admin-input.ts readQuery). */
export const auditQuery = {
  resourceType: z.string().min(1).optional(),
  resourceName: z.string().min(1).optional(),
};

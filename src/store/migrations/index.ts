// The numbered list of schema migrations; append new ones with the next id.
import type { Migration } from './migration.js';
import { initial } from './0001-initial.js';
import { analytics } from './0002-analytics.js';
import { oauthTokens } from './0003-oauth-tokens.js';
import { tokensEstimated } from './0004-tokens-estimated.js';
import { responseId } from './0005-response-id.js';
import { credentialProducts } from './0006-credential-products.js';
import { auditResourceName } from './0007-audit-resource-name.js';
import { changeLog } from './0008-change-log.js';

export type { Migration } from './migration.js';

export const MIGRATIONS: readonly Migration[] = [initial, analytics, oauthTokens, tokensEstimated, responseId, credentialProducts, auditResourceName, changeLog];

// The numbered list of schema migrations; append new ones (e.g. analytics_records) with the next id.
import type { Migration } from './migration.js';
import { initial } from './0001-initial.js';

export type { Migration } from './migration.js';

export const MIGRATIONS: readonly Migration[] = [initial];

// Types shared by several repositories.

/** Apigee's name/value attribute pairs (products, developers, apps). */
export interface Attribute {
  name: string;
  value: string;
}

/** `file`: declared in a --config file (read-only through the admin API); `api`: created through the admin API. */
export type Owner = 'file' | 'api';

/** What applying a declarative object did; `unchanged` means identical content was already stored (no write). */
export type ApplyOutcome = 'created' | 'updated' | 'unchanged';

export interface Applied<T> {
  outcome: ApplyOutcome;
  item: T;
}

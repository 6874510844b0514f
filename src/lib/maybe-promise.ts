// Values ready at once or later (a counter store in this process answers at once): continuing at once when ready,
// without a promise and a turn of the event loop.
import type { MaybePromise } from '../store/caches/cache-store.js';

/** `next(value)`, at once when `value` is not a promise. @example andThen(store.get(key), (count) => count + 1) */
export function andThen<T, R>(value: MaybePromise<T>, next: (value: T) => R): R | Promise<Awaited<R>> {
  return value instanceof Promise ? (value.then(next) as Promise<Awaited<R>>) : next(value);
}

// The error counter stores raise when their backend cannot answer, so policies can apply failOpen.

export class CounterStoreUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CounterStoreUnavailableError';
  }
}

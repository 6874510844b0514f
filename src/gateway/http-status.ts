// What a status says about an answer, in one place for the data plane, ext_proc and the policies.

/** A 2xx: the request was accepted and answered (undefined: no answer, so not). */
export const isSuccess = (status: number | undefined): status is number => status !== undefined && status >= 200 && status < 300;

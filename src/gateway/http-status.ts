// What a status says about an answer, in one place for the data plane, ext_proc and the policies.

/** A 2xx: the request was accepted and answered (undefined: no answer, so not). */
export const isSuccess = (status: number | undefined): status is number => status !== undefined && status >= 200 && status < 300;

/** Whether an answer's body reaches the client: none answers a HEAD, nor comes with a 204 or 304 (RFC 9110 §9.3.2, §15.3.5, §15.4.5). */
export const sendsBody = (method: string, status: number): boolean => method !== 'HEAD' && status !== 204 && status !== 304;

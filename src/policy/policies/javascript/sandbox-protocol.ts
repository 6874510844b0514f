// Messages between the JavaScript policy's pool (main thread) and its sandbox workers.

/** A script as the workers know it: compiled once per worker, found again by `id`. */
export interface ScriptRef {
  /** Hash of the source and limits. */
  id: string;
  source: string;
  memoryLimitBytes: number;
}

export interface SandboxJob {
  id: number;
  script: ScriptRef;
  timeLimitMs: number;
  /** JSON of the ScriptInput (script-io.ts). */
  input: string;
}

export type SandboxReply =
  | { id: number; ok: true; output: string }
  | { id: number; ok: false; kind: 'timeout' | 'error'; message: string };

export type WorkerMessage = { ready: true } | SandboxReply;

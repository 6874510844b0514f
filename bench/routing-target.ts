// What `bench routing` replays a strategy against: a gateway and a simulated fleet, in child processes on real time
// (routing-processes.ts) or in this process on a virtual clock (routing-virtual.ts).
import type { EndpointPickerConfigSpec } from '../src/config/inference-kinds.js';
import type { Outcome } from './routing-load.js';
import type { BenchRequest, PriorityClass, Workload } from './workloads.js';

export interface TargetSpec {
  workload: Workload;
  picker: EndpointPickerConfigSpec;
  endpoints: number;
  /** Simulated seconds per real second (child processes only: a virtual clock has no real time). */
  timeScale: number;
  seed: number;
  maxNumSeqs: number;
  kvBlocks: number;
  /** Simulated seconds to wait for the last answers after the last arrival; those still open count as failed. */
  drainSeconds: number;
}

export interface RoutingTarget {
  /**
   * Sends each request at its `at` (simulated seconds from now) and collects the outcomes; with `firstTokenOnly`,
   * each answer is abandoned at its first token (its e2e stays unknown).
   */
  replay(requests: BenchRequest[], onProgress: (done: number, total: number) => void, opts?: { firstTokenOnly?: boolean }): Promise<Outcome[]>;
  /** How many requests left the flow-control queue so far, by "<priority class>/<outcome>". */
  queueCounts(): Promise<Record<string, number>>;
  /** Waits until nothing waits, runs or is in flight anywhere, so measurements do not overlap. */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

const PRIORITY_LABEL: Record<string, PriorityClass> = { '1': 'critical', '0': 'standard', '-1': 'sheddable' };

/** inference_extension_flow_control_request_queue_duration_seconds_count of a /metrics page, by "<priority class>/<outcome>". */
export function parseQueueCounts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = /^inference_extension_flow_control_request_queue_duration_seconds_count\{([^}]*)\} (\S+)$/gm;
  for (const m of text.matchAll(re)) {
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    out[`${PRIORITY_LABEL[labels.priority] ?? labels.priority}/${labels.outcome}`] = Number(m[2]);
  }
  return out;
}

/** The model the fleet serves: the base model the workload's InferenceModels target. */
export function baseModelOf(w: Workload): string {
  return w.models.find((m) => m.criticality === undefined)?.target ?? w.models[0].target;
}

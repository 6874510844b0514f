// Round-robin over a pool's endpoints: the baseline strategy (the routing benchmark compares against it).
import type { EndpointConfig } from '../config/runtime-config.js';
import type { EndpointPicker, Pick, PickRequest } from './types.js';

const noRelease = () => {};

export class RoundRobinPicker implements EndpointPicker {
  readonly #next = new Map<string, number>();

  pick(req: PickRequest): Pick {
    const all = req.pool.endpoints;
    const eligible = req.subset ? all.filter((e) => req.subset!.has(e.address)) : all;
    const start = this.#next.get(req.pool.name) ?? 0;
    this.#next.set(req.pool.name, (start + 1) % Math.max(1, eligible.length));
    const endpoints: EndpointConfig[] = [];
    for (let i = 0; i < eligible.length; i++) endpoints.push(eligible[(start + i) % eligible.length]);
    return { endpoints, release: noRelease };
  }
}

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_ADAPTERS, readEngineMetrics } from './engine-metrics.js';
import { queueScorer } from './plugins/scorers/queue-scorer/queue-scorer.js';
import { leastRequestsScorer } from './plugins/scorers/least-requests-scorer/least-requests-scorer.js';
import { deps, endpoint, scores } from './testing.js';

const LOAD = ['vllm:num_requests_waiting{model_name="base"} 0', 'vllm:num_requests_running{model_name="base"} 0', 'vllm:kv_cache_usage_perc{model_name="base"} 0'];
const loraLine = (running: string, waiting: string, maxLora = 4) =>
  `vllm:lora_requests_info{max_lora="${maxLora}",running_lora_adapters="${running}",waiting_lora_adapters="${waiting}"} 1700000000`;

describe('readEngineMetrics', () => {
  test('vLLM: queue, KV, cache config, newest LoRA series, base model', () => {
    const page = [
      'vllm:num_requests_waiting{model_name="llama"} 4',
      'vllm:num_requests_running{model_name="llama"} 9',
      'vllm:kv_cache_usage_perc{model_name="llama"} 0.42',
      'vllm:cache_config_info{block_size="16",num_gpu_blocks="2810",gpu_memory_utilization="0.9"} 1',
      'vllm:lora_requests_info{max_lora="4",running_lora_adapters="old",waiting_lora_adapters=""} 100',
      'vllm:lora_requests_info{max_lora="4",running_lora_adapters="a, b",waiting_lora_adapters="c"} 200',
    ].join('\n');
    const m = readEngineMetrics('vllm', page);
    assert.equal(m.waiting, 4);
    assert.equal(m.running, 9);
    assert.equal(m.kvCacheUsage, 0.42);
    assert.equal(m.blockSize, 16);
    assert.equal(m.numGpuBlocks, 2810);
    assert.equal(m.modelName, 'llama');
    assert.deepEqual([...m.lora!.running], ['a', 'b']);
    assert.deepEqual([...m.lora!.waiting], ['c']);
    assert.equal(m.lora!.maxLoras, 4);
  });

  test('the prompt-token counter, over every engine rank; null when the page has none', () => {
    const page = (extra: string[]) =>
      ['vllm:num_requests_waiting{model_name="m"} 0', 'vllm:num_requests_running{model_name="m"} 0', 'vllm:kv_cache_usage_perc{model_name="m"} 0', ...extra].join('\n');
    const ranks = page(['vllm:prompt_tokens_total{engine="0",model_name="m"} 1200', 'vllm:prompt_tokens_total{engine="1",model_name="m"} 300']);
    assert.equal(readEngineMetrics('vllm', ranks).promptTokensTotal, 1500);
    assert.equal(readEngineMetrics('vllm', page([])).promptTokensTotal, null);
    assert.equal(readEngineMetrics('vllm', page(['vllm:prompt_tokens_total{model_name="m"} NaN'])).promptTokensTotal, null);
  });

  test('vLLM: the LoRA state of now on a long-running server, past a thousand older label sets', () => {
    // vLLM never removes a label set of vllm:lora_requests_info: the page lists every one, the current one last here.
    const old = Array.from({ length: 1100 }, (_, i) => `vllm:lora_requests_info{max_lora="1",running_lora_adapters="cold-${i}",waiting_lora_adapters=""} ${1_700_000_000 + i}`);
    const page = [
      'vllm:num_requests_waiting{model_name="base"} 0',
      'vllm:num_requests_running{model_name="base"} 1',
      'vllm:kv_cache_usage_perc{model_name="base"} 0.1',
      ...old,
      'vllm:lora_requests_info{max_lora="1",running_lora_adapters="hot",waiting_lora_adapters=""} 1700100000',
    ].join('\n');
    // Before: {"running":["cold-1023"]}, the newest of the first 1024 lines.
    assert.deepEqual([...readEngineMetrics('vllm', page).lora!.running], ['hot']);
    // A page cut short (MetricsPage.cut) may end before the line of now: the LoRA state is not known, the rest is read.
    const cut = readEngineMetrics('vllm', page, true);
    assert.equal(cut.lora, null);
    assert.deepEqual([cut.running, cut.kvCacheUsage], [1, 0.1]);
  });

  test('vLLM: an adapter in both lists takes one slot (current vLLM lists each adapter with unfinished requests in both)', () => {
    const m = readEngineMetrics('vllm', [...LOAD, loraLine('a,b', 'a,b,c')].join('\n'));
    // Before: no such count; the scorers added the lists' sizes, 5, and an engine with 3 of 4 slots taken looked full.
    assert.equal(m.lora!.inUse, 3);
  });

  test('vLLM: an adapter list past MAX_ADAPTERS names leaves the LoRA state unknown; up to it, every name is read', () => {
    const names = (n: number, prefix = 'a') => Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(',');
    const full = readEngineMetrics('vllm', [...LOAD, loraLine(names(MAX_ADAPTERS), '')].join('\n'));
    assert.equal(full.lora!.running.size, MAX_ADAPTERS);
    // 500,000 names in one line, well under the 4 MiB page limit: before, each scrape split all of them (0.3 s) and the
    // pool added each to its adapter names again.
    for (const [running, waiting] of [[names(500_000), ''], ['a', names(MAX_ADAPTERS + 1, 'w')], [','.repeat(500_000), '']]) {
      const m = readEngineMetrics('vllm', [...LOAD, loraLine(running, waiting)].join('\n'));
      assert.equal(m.lora, null);
      assert.deepEqual([m.waiting, m.running], [0, 0], 'the rest of the page is read');
    }
  });

  test('per-rank counts that add up past the largest double stay finite: the queue and least-requests scorers keep their signal', () => {
    const ranks = (v: string) =>
      [`vllm:num_requests_waiting{engine="0"} ${v}`, `vllm:num_requests_waiting{engine="1"} ${v}`, `vllm:num_requests_running{engine="0"} ${v}`, `vllm:num_requests_running{engine="1"} ${v}`, 'vllm:kv_cache_usage_perc 0'].join('\n');
    const huge = readEngineMetrics('vllm', ranks('1e308'));
    assert.ok(Number.isFinite(huge.waiting) && Number.isFinite(huge.running), `waiting ${huge.waiting}, running ${huge.running}`);
    const eps = [endpoint(1, huge), endpoint(2, readEngineMetrics('vllm', ranks('1')))];
    assert.ok(Number.isFinite(eps[0].load));
    // Before: Infinity - Infinity = NaN for every endpoint (scored 0 by the pipeline): the overloaded one was as good as the idle.
    assert.deepEqual(scores(queueScorer('q', {}, deps()), eps), [0, 1]);
    assert.deepEqual(scores(leastRequestsScorer('l', {}, deps()), eps), [0, 1]);
  });

  test('vLLM: falls back to gpu_cache_usage_perc; no cache config or LoRA series gives nulls', () => {
    const m = readEngineMetrics('vllm', 'vllm:num_requests_waiting 0\nvllm:num_requests_running 1\nvllm:gpu_cache_usage_perc 0.3');
    assert.equal(m.kvCacheUsage, 0.3);
    assert.equal(m.blockSize, null);
    assert.equal(m.numGpuBlocks, null);
    assert.equal(m.lora, null);
    assert.equal(m.modelName, null);
  });

  test('data-parallel ranks: requests add up, KV usage averages', () => {
    const page = [
      'vllm:num_requests_waiting{engine="0"} 1',
      'vllm:num_requests_waiting{engine="1"} 2',
      'vllm:num_requests_running{engine="0"} 3',
      'vllm:num_requests_running{engine="1"} 4',
      'vllm:kv_cache_usage_perc{engine="0"} 0.2',
      'vllm:kv_cache_usage_perc{engine="1"} 0.4',
    ].join('\n');
    const m = readEngineMetrics('vllm', page);
    assert.deepEqual([m.waiting, m.running], [3, 7]);
    assert.ok(Math.abs(m.kvCacheUsage - 0.3) < 1e-12);
  });

  test('figures out of range are clamped: a negative queue or running count is 0, KV usage stays within 0 and 1', () => {
    const m = readEngineMetrics('vllm', 'vllm:num_requests_waiting -1000\nvllm:num_requests_running -3\nvllm:kv_cache_usage_perc -50\n');
    assert.deepEqual([m.waiting, m.running, m.kvCacheUsage], [0, 0, 0]);
    assert.equal(readEngineMetrics('vllm', 'vllm:num_requests_waiting 0\nvllm:num_requests_running 0\nvllm:kv_cache_usage_perc 7\n').kvCacheUsage, 1);
  });

  test('SGLang names', () => {
    const m = readEngineMetrics('sglang', 'sglang:num_queue_reqs{model_name="q"} 2\nsglang:num_running_reqs 5\nsglang:token_usage 0.7');
    assert.deepEqual([m.waiting, m.running, m.kvCacheUsage, m.modelName], [2, 5, 0.7, 'q']);
  });

  test('TensorRT-LLM: trtllm-serve names, then Triton series by label', () => {
    const serve = readEngineMetrics('trtllm', 'trtllm_num_requests_waiting 1\ntrtllm_num_requests_running 2\ntrtllm_kv_cache_utilization 0.5');
    assert.deepEqual([serve.waiting, serve.running, serve.kvCacheUsage], [1, 2, 0.5]);
    const triton = readEngineMetrics(
      'trtllm',
      [
        'nv_trt_llm_request_metrics{request_type="active"} 9',
        'nv_trt_llm_request_metrics{request_type="waiting"} 3',
        'nv_trt_llm_request_metrics{request_type="scheduled"} 6',
        'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction"} 0.25',
        'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max"} 1000',
      ].join('\n'),
    );
    assert.deepEqual([triton.waiting, triton.running, triton.kvCacheUsage], [3, 6, 0.25]);
  });

  test('a missing required series throws, naming it', () => {
    assert.throws(() => readEngineMetrics('vllm', 'vllm:num_requests_running 1\nvllm:kv_cache_usage_perc 0'), /vllm:num_requests_waiting/);
    assert.throws(() => readEngineMetrics('sglang', 'vllm:num_requests_waiting 1'), /sglang:num_queue_reqs/);
  });
});

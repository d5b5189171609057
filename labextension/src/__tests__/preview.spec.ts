// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';
import { XgenAPIError } from '../api';
import { initialState, IState, reduce } from '../model';
import { barWidths, predictionText, previewRows, rowText } from '../preview';
import { XgenStore } from '../store';
import { ILoadRequest, IPlan, XgenAction } from '../types';
import { LoadForm } from '../widgets/loadform';
import { PlanPreview } from '../widgets/planpreview';
import { gpu } from './fixtures';

const GIB = 1024 ** 3;
const stateOf = (...actions: XgenAction[]): IState => actions.reduce(reduce, initialState);
const cpu = { memory_total: 128 * GIB, memory_available: 100 * GIB };

function plan(over: Partial<IPlan> = {}): IPlan {
  return {
    name: 'm',
    backend: 'llama-server-cuda',
    gpus: [0],
    reasons: [],
    memory: { gpu_total: 8 * GIB, host_total: 9 * GIB, budget: 10 * GIB, per_gpu: [], per_gpu_budget: [] },
    prediction: {
      decode_tps: 54.5,
      prompt_tps: 3453,
      strategy: 'experts',
      flags: '-ngl 49 --n-cpu-moe 30',
      runner_up: { decode_tps: 37.3, prompt_tps: 2506, strategy: 'layers', flags: '-ngl 21', runner_up: null }
    },
    ...over
  };
}

// One H100 with 70 GiB in use (10 GiB free), another free, and the host's RAM.
const busy = stateOf(
  { kind: 'hello', servers: [], hardware: { gpus: [], cpu } },
  { kind: 'gpus', data: { gpus: [gpu(0, 70), gpu(1, 0)], time: 1 } }
);

describe('previewRows', () => {
  it('gives the card the plan uses, its free memory now, and host RAM for the CPU share', () => {
    const rows = previewRows(plan(), busy.gpus, busy.hardware);
    expect(rows.map(r => r.key)).toEqual(['gpu:0', 'host']);
    expect(rows[0]).toMatchObject({ planned: 8 * GIB, free: 10 * GIB, total: 80 * GIB, over: false });
    expect(rows[0].label).toBe('GPU 0 NVIDIA H100 80GB HBM3');
    expect(rows[1]).toMatchObject({ planned: 9 * GIB, free: 100 * GIB, total: 128 * GIB });
    expect(rowText(rows[0])).toBe('8.0 GiB planned of 10.0 GiB free (80.0 GiB)');
    // 70 of 80 GiB in use, then the plan's 8 GiB.
    expect(barWidths(rows[0])).toEqual({ used: 87.5, planned: 10 });
  });

  it('reads each card of a split from per_gpu, and flags a card that no longer has room', () => {
    const split = plan({
      gpus: [0, 1],
      memory: { gpu_total: 30 * GIB, host_total: 0, per_gpu: [12 * GIB, 18 * GIB], per_gpu_budget: [] }
    });
    const rows = previewRows(split, busy.gpus, busy.hardware);
    expect(rows.map(r => [r.key, r.planned / GIB, r.over])).toEqual([
      ['gpu:0', 12, true],
      ['gpu:1', 18, false]
    ]);
    expect(barWidths(rows[0])).toEqual({ used: 87.5, planned: 12.5 }); // clipped to the bar
  });

  it('shows host RAM alone for a CPU plan, and nothing without an estimate', () => {
    const cpuPlan = plan({ gpus: [], memory: { gpu_total: 0, host_total: 5 * GIB } });
    expect(previewRows(cpuPlan, [], busy.hardware).map(r => r.key)).toEqual(['host']);
    expect(previewRows(plan({ memory: null }), busy.gpus, busy.hardware)).toEqual([]);
  });
});

describe('predictionText', () => {
  it('says the chosen placement and the runner-up with their tokens/s', () => {
    expect(predictionText(plan().prediction)).toEqual([
      'Predicted ~55 t/s decode, ~3453 t/s prompt (experts on the CPU: -ngl 49 --n-cpu-moe 30)',
      'Runner-up whole layers on the CPU (-ngl 21): ~37 t/s decode, ~2506 t/s prompt'
    ]);
    expect(predictionText(null)).toEqual([]);
  });
});

describe('PlanPreview', () => {
  it('follows the live free memory with the same plan', () => {
    const p = new PlanPreview();
    p.showPlan(plan(), busy);
    expect(p.node.hidden).toBe(false);
    const label = () => p.node.querySelector('[data-key="gpu:0"] .xgen-bar-label')!.textContent;
    expect(label()).toContain('of 10.0 GiB free');
    p.render(reduce(busy, { kind: 'gpus', data: { gpus: [gpu(0, 76), gpu(1, 0)], time: 2 } }));
    expect(label()).toContain('of 4.0 GiB free');
    expect(p.node.querySelector('[data-key="gpu:0"]')!.classList.contains('xgen-preview-over')).toBe(true);
  });

  it('says what the last load of the same model and settings really took', () => {
    const p = new PlanPreview();
    const why = 'the last load of this model with these settings took 8.3 GiB where 8.0 GiB was predicted (+307 MiB)';
    p.showPlan(plan({ reasons: [{ rule: 'calibration', effect: 'predicted 8.0 GiB, last measured 8.3 GiB', why, level: 'info' }] }), busy);
    const line = p.node.querySelector('[data-testid="xgen-preview-calibration"]') as HTMLElement;
    expect(line.textContent).toBe('predicted 8.0 GiB, last measured 8.3 GiB');
    expect(line.title).toBe(why);
    p.showPlan(plan(), busy);
    expect(p.node.querySelector('[data-testid="xgen-preview-calibration"]')).toBeNull();
  });
});

/** A store whose plan() answers from a function, counting calls (no server in a unit test). */
class PlanStore extends XgenStore {
  calls: ILoadRequest[] = [];
  answer: (req: ILoadRequest) => Promise<IPlan> = async () => plan();
  async plan(req: ILoadRequest): Promise<IPlan> {
    this.calls.push(req);
    return this.answer(req);
  }
}

describe('LoadForm preview', () => {
  beforeEach(() => {
    document.body.textContent = '';
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  function form(store: PlanStore): LoadForm {
    const f = new LoadForm(store, 400);
    Widget.attach(f, document.body);
    const model = f.node.querySelector('select[name="model"]') as HTMLSelectElement;
    for (const name of ['default', 'qwen']) {
      const o = document.createElement('option');
      o.value = o.textContent = name;
      model.appendChild(o);
    }
    return f;
  }

  it('asks for one plan after the fields settle and shows it before Load is clicked', async () => {
    const store = new PlanStore();
    store.dispatch({ kind: 'gpus', data: { gpus: [gpu(0, 70)], time: 1 } });
    const f = form(store);
    const ctx = f.node.querySelector('input[name="n_ctx"]') as HTMLInputElement;
    for (const v of ['4', '40', '409', '4096']) {
      ctx.value = v;
      ctx.dispatchEvent(new Event('input', { bubbles: true }));
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(store.calls).toHaveLength(0); // still typing
    await vi.advanceTimersByTimeAsync(400);
    expect(store.calls).toEqual([{ model: 'default', n_ctx: 4096 }]);
    const preview = f.node.querySelector('[data-testid="xgen-plan-preview"]') as HTMLElement;
    expect(preview.hidden).toBe(false);
    expect(preview.querySelector('[data-key="gpu:0"]')!.textContent).toContain('8.0 GiB planned of 10.0 GiB free');
    expect(preview.querySelector('[data-testid="xgen-preview-speed"]')!.textContent).toContain('~55 t/s decode');
  });

  it('shows the plan’s error inline, and drops an answer a newer change overtook', async () => {
    const store = new PlanStore();
    const f = form(store);
    const body = { error: 'model-not-found', message: 'no model named "qwen"', hint: 'xgen models lists them' };
    let release: (p: IPlan) => void = () => undefined;
    store.answer = req =>
      req.model === 'qwen'
        ? new Promise<IPlan>(resolve => (release = resolve))
        : Promise.reject(new XgenAPIError(404, body, 'no model named "default" (xgen models lists them)'));
    const model = f.node.querySelector('select[name="model"]') as HTMLSelectElement;
    model.value = 'qwen';
    const slow = f.updatePreview();
    model.value = 'default';
    await f.updatePreview();
    release(plan({ backend: 'stale' }));
    await slow;
    const err = f.node.querySelector('[data-testid="xgen-plan-error"]') as HTMLElement;
    expect(err.textContent).toBe('no model named "default" (xgen models lists them)');
    expect(f.node.textContent).not.toContain('stale');
  });
});

describe('XgenStore.plan', () => {
  it('POSTs the form’s request to xgen/api/plan under the base_url and returns the plan', async () => {
    const seen: Array<{ url: string; method: string; body: string }> = [];
    const fetchStub = async (input: RequestInfo | URL) => {
      const r = input as Request;
      seen.push({ url: r.url.split('?')[0], method: r.method, body: await r.text() }); // less the cache-buster
      return new Response(JSON.stringify(plan()), { status: 200, headers: { 'Content-Type': 'application/json' } });
    };
    const settings = ServerConnection.makeSettings({
      baseUrl: 'http://127.0.0.1:9999/user/alice/',
      wsUrl: 'ws://127.0.0.1:9999/user/alice/',
      token: '',
      fetch: fetchStub as typeof fetch
    });
    const answer = await new XgenStore({ settings }).plan({ model: 'qwen', n_ctx: 4096 });
    expect(seen).toEqual([
      { url: 'http://127.0.0.1:9999/user/alice/xgen/api/plan', method: 'POST', body: '{"model":"qwen","n_ctx":4096}' }
    ]);
    expect(answer.prediction!.decode_tps).toBe(54.5);
  });
});

// @vitest-environment happy-dom
import { beforeEach, describe, expect, it } from 'vitest';
import { Widget } from '@lumino/widgets';
import { initialState, IState, reduce } from '../model';
import { XgenStore } from '../store';
import { IBoxServer, XgenAction } from '../types';
import { BoxList } from '../widgets/box';
import { GpuPanel } from '../widgets/gpus';
import { LoadForm } from '../widgets/loadform';
import { LogView } from '../widgets/logview';
import { ServerList } from '../widgets/servers';
import { boxEntry, gpu, RECORDED_H100, server, twoNodeReport } from './fixtures';

const stateOf = (...actions: XgenAction[]): IState => actions.reduce(reduce, initialState);

function attached<T extends Widget>(w: T): T {
  Widget.attach(w, document.body);
  return w;
}

beforeEach(() => {
  document.body.textContent = '';
});

describe('GpuPanel', () => {
  it('renders one row per GPU with a memory bar and utilisation', () => {
    const panel = attached(new GpuPanel());
    panel.render(stateOf({ kind: 'gpus', data: { gpus: [gpu(0, 20), gpu(1, 76)], time: 1 } }));
    const rows = panel.node.querySelectorAll('.xgen-gpu-row');
    expect(rows).toHaveLength(2);
    const fill = rows[0].querySelector('.xgen-bar-fill') as HTMLElement;
    expect(fill.style.width).toBe('25%');
    expect(rows[1].querySelector('.xgen-bar-fill')!.classList.contains('xgen-bar-high')).toBe(true);
    expect(rows[0].querySelector('.xgen-bar-label')!.textContent).toBe('20.0 GiB / 80.0 GiB');
    expect(rows[0].querySelector('.xgen-gpu-util')!.textContent).toBe('37%');
  });

  it('says so when there is no GPU', () => {
    const panel = attached(new GpuPanel());
    panel.render(stateOf({ kind: 'hello', servers: [], hardware: { gpus: [], cpu: { model_name: 'EPYC' } } }));
    expect(panel.node.querySelector('.xgen-gpu-row')).toBeNull();
    expect(panel.node.querySelector('.xgen-cpu')!.textContent).toContain('No GPU detected');
  });
});

describe('ServerList', () => {
  it('shows state, backend and reasons with warnings first and opened', () => {
    const store = new XgenStore();
    const list = attached(new ServerList(store));
    list.render(stateOf({ kind: 'upsert', data: server('m', 'ready') }));
    const row = list.node.querySelector('[data-testid="xgen-server-row"]') as HTMLElement;
    expect(row.dataset.name).toBe('m');
    expect(row.querySelector('.xgen-server-state')!.textContent).toBe('ready');
    expect(row.querySelector('.xgen-server-backend')!.textContent).toBe('llama-server-cpu');
    const reasons = [...row.querySelectorAll('.xgen-reason')] as HTMLElement[];
    expect(reasons.map(r => r.dataset.rule)).toEqual(['ctx-cap', 'cpu-only']);
    expect(reasons[0].classList.contains('xgen-reason-warning')).toBe(true);
    expect((row.querySelector('details') as HTMLDetailsElement).open).toBe(true);
    expect(row.querySelector('summary')!.textContent).toContain('1 warning');
  });

  it('shows the error of a failed server and an empty note without servers', () => {
    const list = attached(new ServerList(new XgenStore()));
    list.render(
      stateOf({
        kind: 'upsert',
        data: server('m', 'failed', { error: { id: 'out-of-memory', summary: 'the engine ran out of memory' } })
      })
    );
    expect(list.node.querySelector('.xgen-server-error')!.textContent).toBe(
      '[out-of-memory] the engine ran out of memory'
    );
    list.render(initialState);
    expect(list.node.querySelector('[data-testid="xgen-no-servers"]')).not.toBeNull();
  });
});

describe('LoadForm', () => {
  it('builds the request from its fields (auto backend and empty context left out)', () => {
    const form = attached(new LoadForm(new XgenStore()));
    const model = form.node.querySelector('select[name="model"]') as HTMLSelectElement;
    for (const name of ['default', 'qwen']) {
      const option = document.createElement('option');
      option.value = option.textContent = name;
      model.appendChild(option);
    }
    model.value = 'qwen';
    expect(form.request()).toEqual({ model: 'qwen' });
    (form.node.querySelector('input[name="n_ctx"]') as HTMLInputElement).value = '4096';
    (form.node.querySelector('input[name="name"]') as HTMLInputElement).value = ' chat ';
    expect(form.request()).toEqual({ model: 'qwen', n_ctx: 4096, name: 'chat' });
  });

  it('shows progress while its server loads', () => {
    const form = attached(new LoadForm(new XgenStore()));
    (form as any)._pending = 'm';
    form.render(
      stateOf(
        { kind: 'upsert', data: server('m', 'loading') },
        { kind: 'progress', server: 'm', data: { progress: 0.5, message: 'loading weights' } }
      )
    );
    const progress = form.node.querySelector('[data-testid="xgen-load-progress"]') as HTMLElement;
    expect(progress.hidden).toBe(false);
    expect(progress.textContent).toContain('50% loading weights');
    form.render(stateOf({ kind: 'upsert', data: server('m', 'ready') }));
    expect(progress.hidden).toBe(true);
    expect(form.node.querySelector('.xgen-load-message')!.textContent).toBe('m is ready.');
  });
});

describe('LogView', () => {
  it('appends lines once each, in order of seq', () => {
    const view = attached(new LogView(new XgenStore(), { tail: () => 10 }));
    view.append({ seq: 1, time: 0, text: 'one' });
    view.append({ seq: 2, time: 0, text: 'two' });
    view.append({ seq: 2, time: 0, text: 'two again (history resent on reconnect)' });
    const lines = [...view.node.querySelectorAll('.xgen-log-line')].map(l => l.textContent);
    expect(lines).toEqual(['one', 'two']);
  });
});

describe('GpuPanel on a Ray cluster', () => {
  it('heads each node’s GPUs with a row, keyed by (node, index)', () => {
    const panel = attached(new GpuPanel());
    panel.render(stateOf({ kind: 'hello', servers: [], hardware: twoNodeReport() }));
    const headers = [...panel.node.querySelectorAll('[data-testid="xgen-gpu-node"]')] as HTMLElement[];
    expect(headers.map(x => x.dataset.node)).toEqual(['127.0.0.2', '127.0.0.3']);
    expect(headers[0].textContent).toBe('Node 127.0.0.2 · 1 GPU');
    const rows = [...panel.node.querySelectorAll('[data-testid="xgen-gpu-row"]')] as HTMLElement[];
    expect(rows.map(r => r.dataset.index)).toEqual(['0', '0']);
    expect(rows.map(r => r.dataset.key)).toEqual(['127.0.0.2#0', '127.0.0.3#0']);
    // Each GPU sits under its own node's header, in the recorded values.
    const bodies = [...panel.node.querySelectorAll('tbody')] as HTMLElement[];
    expect(bodies.map(b => b.querySelector('.xgen-gpu-row')!.getAttribute('data-node'))).toEqual([
      '127.0.0.2',
      '127.0.0.3'
    ]);
    expect(rows[1].querySelector('.xgen-bar-label')!.textContent).toBe('480 MiB / 79.6 GiB');
  });

  it('shows no node rows on one box', () => {
    const panel = attached(new GpuPanel());
    panel.render(stateOf({ kind: 'gpus', data: { gpus: [RECORDED_H100, { ...RECORDED_H100, index: 1 }], time: 1 } }));
    expect(panel.node.querySelectorAll('[data-testid="xgen-gpu-node"]')).toHaveLength(0);
    expect(panel.node.querySelectorAll('tbody')).toHaveLength(1);
    expect(panel.node.querySelector('.xgen-gpu-row')!.hasAttribute('data-node')).toBe(false);
  });
});

describe('BoxList', () => {
  const box = (...servers: IBoxServer[]) => stateOf({ kind: 'box', servers });

  it('lists everyone’s servers, marking the user’s own as "you"', () => {
    const list = attached(new BoxList());
    list.render(
      box(
        boxEntry('alice', 'alice-3', { mine: true }),
        boxEntry('bob', 'bob-7', { devices: [{ device: 'host', label: 'host RAM', kind: 'host', bytes: 512 * 1024 ** 2 }], gpu_bytes: 0, host_bytes: 512 * 1024 ** 2, state: 'loading', backend: 'llama-server-cpu' })
      )
    );
    const rows = [...list.node.querySelectorAll('[data-testid="xgen-box-row"]')] as HTMLElement[];
    const cells = (r: HTMLElement) =>
      ['owner', 'name', 'devices', 'gpu', 'host', 'state'].map(c => r.querySelector(`[data-testid="xgen-box-${c}"]`)!.textContent);
    expect(cells(rows[0])).toEqual(['you', 'alice-3default', 'GPU 0', '1.35 GiB', '0.25 GiB', 'ready']);
    expect(cells(rows[1])).toEqual(['bob', 'bob-7default', 'cpu', '0 GiB', '0.50 GiB', 'loading']);
    expect(rows.map(r => r.dataset.mine)).toEqual(['true', 'false']);
    expect(rows[0].querySelector('[data-testid="xgen-box-owner"]')!.getAttribute('title')).toBe('alice');
    expect(list.node.querySelector('summary')!.textContent).toBe('On this box (2)');
    // A server named after its model says the model once.
    list.render(box(boxEntry('carol', 'default')));
    expect(list.node.querySelector('[data-testid="xgen-box-name"]')!.textContent).toBe('default');
  });

  it('never shows keys or logs, even if an entry carried them', () => {
    const list = attached(new BoxList());
    list.render(box(boxEntry('bob', 'bob-7', { api_key: 'sk-SECRET', log_tail: 'LOGLINE', log_file: '/home/bob/x.log' })));
    const html = list.node.innerHTML;
    for (const leak of ['sk-SECRET', 'LOGLINE', '/home/bob']) {
      expect(html).not.toContain(leak);
    }
  });

  it('keeps the user’s collapse across refreshes, says when empty, loading or failing', () => {
    const list = attached(new BoxList());
    list.render(initialState);
    expect(list.node.querySelector('[data-testid="xgen-box-loading"]')).not.toBeNull();
    list.render(box());
    expect(list.node.querySelector('[data-testid="xgen-box-empty"]')!.textContent).toBe('No servers on this box.');
    const details = list.node.querySelector('details') as HTMLDetailsElement;
    expect(details.open).toBe(true);
    details.open = false;
    details.dispatchEvent(new Event('toggle'));
    list.render(stateOf({ kind: 'box', servers: [boxEntry('bob', 'bob-7')] }, { kind: 'box-error', error: 'network down' }));
    expect((list.node.querySelector('details') as HTMLDetailsElement).open).toBe(false);
    expect(list.node.querySelectorAll('[data-testid="xgen-box-row"]')).toHaveLength(1);
    expect(list.node.querySelector('[data-testid="xgen-box-error"]')!.textContent).toContain('network down');
  });
});

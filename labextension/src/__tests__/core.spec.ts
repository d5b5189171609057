// @vitest-environment happy-dom
import { beforeEach, describe, expect, it } from 'vitest';
import { Widget } from '@lumino/widgets';
import { initialState, IState, reduce } from '../model';
import { XgenAction } from '../types';
import { GpuPanel } from '../widgets/gpus';

// Where models run, as the events websocket's hello says it (server/handlers/events.py).
const BOX = 'box service at /srv/xgen/box.sock, user alice';
const HERE = 'in this Jupyter server';
const stateOf = (...actions: XgenAction[]): IState => actions.reduce(reduce, initialState);
const hello = (core?: string): XgenAction => ({
  kind: 'hello',
  servers: [],
  hardware: { gpus: [], cpu: { model_name: 'EPYC' } },
  ...(core === undefined ? {} : { xgen_core: core })
});

function rendered(state: IState): HTMLElement {
  const panel = new GpuPanel();
  Widget.attach(panel, document.body);
  panel.render(state);
  return panel.node;
}

beforeEach(() => {
  document.body.textContent = '';
});

describe('where models run', () => {
  it('is unknown until a hello says it, then kept across a hello without it', () => {
    expect(initialState.core).toBeNull();
    expect(stateOf(hello(BOX)).core).toBe(BOX);
    expect(stateOf(hello(BOX), hello()).core).toBe(BOX);
    expect(stateOf(hello(BOX), hello(HERE)).core).toBe(HERE);
  });

  it('the hardware section names the box service, its socket and the user', () => {
    const line = rendered(stateOf(hello(BOX))).querySelector('[data-testid="xgen-core"]') as HTMLElement;
    expect(line.textContent).toBe(`Models run: ${BOX}`);
    expect(line.dataset.shared).toBe('yes');
  });

  it('or says the models run in this Jupyter server', () => {
    const line = rendered(stateOf(hello(HERE))).querySelector('[data-testid="xgen-core"]') as HTMLElement;
    expect(line.textContent).toBe(`Models run: ${HERE}`);
    expect(line.dataset.shared).toBe('no');
  });

  it('shows no line before the server said', () => {
    expect(rendered(stateOf(hello())).querySelector('[data-testid="xgen-core"]')).toBeNull();
  });
});

// @vitest-environment happy-dom
import { beforeEach, describe, expect, it } from 'vitest';
import { Widget } from '@lumino/widgets';
import { ServerConnection } from '@jupyterlab/services';
import { formatQueue } from '../format';
import { initialState, IState, reduce, unloadedModels, userOf } from '../model';
import { XgenStore } from '../store';
import { XgenAction } from '../types';
import { ServerList } from '../widgets/servers';
import { modelsAnswer, queueEvent, server } from './fixtures';

const stateOf = (...actions: XgenAction[]): IState => actions.reduce(reduce, initialState);
const BOX_HELLO = 'box service at /run/xgen/box.sock, user alice';

beforeEach(() => {
  document.body.textContent = '';
});

/** A store whose REST calls go to a stub (the network edge only); it records what was asked. */
function storeAnswering(answer: (url: string, init: RequestInit) => { status: number; body: unknown }) {
  const seen: { url: string; method: string; body: string }[] = [];
  const fetchStub = async (input: RequestInfo | URL) => {
    const req = input as Request;
    const body = await req.text();
    seen.push({ url: req.url, method: req.method, body });
    const a = answer(req.url, { method: req.method, body });
    return new Response(JSON.stringify(a.body), { status: a.status, headers: { 'Content-Type': 'application/json' } });
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://127.0.0.1:9999/user/alice/',
    wsUrl: 'ws://127.0.0.1:9999/user/alice/',
    token: '',
    fetch: fetchStub as typeof fetch
  });
  return { store: new XgenStore({ settings }), seen, settings };
}

const settle = () => new Promise(resolve => setTimeout(resolve, 20));

describe('queue text', () => {
  it('says how many wait and where this user is', () => {
    expect(formatQueue(queueEvent('m').data, 'alice')).toBe('3 queued (you: positions 1, 3)');
    expect(formatQueue(queueEvent('m').data, 'bob')).toBe('3 queued (you: position 2)');
    expect(formatQueue(queueEvent('m').data, 'carol')).toBe('3 queued');
    expect(formatQueue(queueEvent('m').data, null)).toBe('3 queued');
    expect(formatQueue(queueEvent('m', { queued: 0, positions: {} }).data, 'alice')).toBeNull();
    expect(formatQueue(null, 'alice')).toBeNull();
  });

  it('knows the user from the box service hello only', () => {
    expect(userOf(BOX_HELLO)).toBe('alice');
    expect(userOf('in this Jupyter server')).toBeNull();
    expect(userOf('box service at /s, user None')).toBeNull();
    expect(stateOf({ kind: 'hello', servers: [], hardware: null, xgen_core: BOX_HELLO }).user).toBe('alice');
  });
});

describe('ServerList queue line', () => {
  it('follows queue events: shown while requests wait, gone when the queue drains', () => {
    const list = new ServerList(new XgenStore());
    Widget.attach(list, document.body);
    let state = stateOf(
      { kind: 'hello', servers: [server('m', 'ready'), server('n', 'ready')], hardware: null, xgen_core: BOX_HELLO },
      queueEvent('m')
    );
    list.render(state);
    const line = (name: string) =>
      list.node.querySelector(`[data-name="${name}"] [data-testid="xgen-server-queue"]`)?.textContent ?? null;
    expect(line('m')).toBe('3 queued (you: positions 1, 3)');
    expect(line('n')).toBeNull();

    state = reduce(state, queueEvent('m', { queued: 1, positions: { bob: [1] } }));
    list.render(state);
    expect(line('m')).toBe('1 queued');
    state = reduce(state, queueEvent('m', { queued: 0, positions: {} }));
    list.render(state);
    expect(line('m')).toBeNull();
  });

  it('reads the queue of a REST answer before any event', () => {
    const list = new ServerList(new XgenStore());
    const s = server('m', 'ready', { queue: { slots: 1, in_flight: 1, queued: 2, positions: { alice: [2], bob: [1] } } });
    list.render(stateOf({ kind: 'hello', servers: [s], hardware: null, xgen_core: BOX_HELLO }));
    expect(list.node.querySelector('[data-testid="xgen-server-queue"]')!.textContent).toBe('2 queued (you: position 2)');
  });
});

describe('catalog', () => {
  it('lists catalog names that are not loaded, below the servers', () => {
    const state = stateOf(
      { kind: 'upsert', data: server('default', 'ready') },
      { kind: 'catalog', models: modelsAnswer().data }
    );
    expect(unloadedModels(state).map(m => m.id)).toEqual(['qwen3-0.6b-q8_0', 'small-ctx']);
    const list = new ServerList(new XgenStore());
    list.render(state);
    const rows = [...list.node.querySelectorAll('[data-testid="xgen-catalog-row"]')] as HTMLElement[];
    expect(rows.map(r => r.dataset.name)).toEqual(['qwen3-0.6b-q8_0', 'small-ctx']);
    expect(rows[0].textContent).toContain('gguf');
    expect(rows[1].textContent).toContain('preset');
    // Below the loaded server's row.
    const order = [...list.node.querySelectorAll('[data-testid="xgen-server-row"], [data-testid="xgen-catalog-row"]')];
    expect((order[0] as HTMLElement).dataset.testid).toBe('xgen-server-row');
  });

  it('hides a name once a server of that name is listed, and the section when nothing is left', () => {
    let state = stateOf({ kind: 'catalog', models: modelsAnswer().data });
    state = reduce(state, { kind: 'upsert', data: server('small-ctx', 'starting') });
    expect(unloadedModels(state).map(m => m.id)).toEqual(['qwen3-0.6b-q8_0']);
    const list = new ServerList(new XgenStore());
    list.render(reduce(state, { kind: 'catalog', models: [] }));
    expect(list.node.querySelector('[data-testid="xgen-catalog"]')).toBeNull();
  });

  it('fetches xgen/v1/models under the base_url into the state', async () => {
    const { store, seen } = storeAnswering(() => ({ status: 200, body: modelsAnswer() }));
    await store.refreshCatalog();
    expect(seen).toHaveLength(1);
    expect(seen[0].url).toMatch(/^http:\/\/127\.0\.0\.1:9999\/user\/alice\/xgen\/v1\/models(\?\d+)?$/);
    expect(store.state.catalog!.map(m => `${m.id}:${m.loaded}`)).toEqual([
      'default:true',
      'qwen3-0.6b-q8_0:false',
      'small-ctx:false'
    ]);
    store.dispose();
  });

  it('keeps the last catalog when a refresh fails', async () => {
    let fail = false;
    const { store } = storeAnswering(() =>
      fail ? { status: 500, body: { error: { message: 'boom' } } } : { status: 200, body: modelsAnswer() }
    );
    await store.refreshCatalog();
    fail = true;
    await store.refreshCatalog();
    expect(store.state.catalog).toHaveLength(3);
    store.dispose();
  });

  it('Load posts the catalog name to xgen/api/servers and lists the new server', async () => {
    const { store, seen } = storeAnswering(url =>
      url.includes('/xgen/v1/models')
        ? { status: 200, body: modelsAnswer() }
        : { status: 202, body: server('qwen3-0.6b-q8_0', 'planned') }
    );
    await store.refreshCatalog();
    const list = new ServerList(store);
    Widget.attach(list, document.body);
    list.render(store.state);
    const button = list.node.querySelector(
      '[data-name="qwen3-0.6b-q8_0"] [data-testid="xgen-catalog-load"]'
    ) as HTMLButtonElement;
    expect(button.textContent).toBe('Load');
    button.click();
    expect(button.disabled).toBe(true);
    await settle();
    const post = seen.find(s => s.method === 'POST')!;
    expect(post.url).toMatch(/\/user\/alice\/xgen\/api\/servers(\?\d+)?$/);
    expect(JSON.parse(post.body)).toEqual({ model: 'qwen3-0.6b-q8_0' });
    expect(store.state.servers['qwen3-0.6b-q8_0'].state).toBe('planned');
    list.render(store.state);
    expect(list.node.querySelector('[data-name="qwen3-0.6b-q8_0"][data-testid="xgen-catalog-row"]')).toBeNull();
    store.dispose();
  });
});

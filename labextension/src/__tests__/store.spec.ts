import { describe, expect, it } from 'vitest';
import { ServerConnection } from '@jupyterlab/services';
import { XgenStore } from '../store';
import { boxEntry, server } from './fixtures';

/**
 * A store whose REST calls go to a stub answering `servers?scope=box` (the network
 * edge only: the store, reducer and requestAPI are the real ones).
 */
function storeAnswering(answers: Array<{ status: number; body: unknown }>) {
  const seen: string[] = [];
  const gates: Array<() => void> = [];
  let hold = false;
  const fetchStub = async (input: RequestInfo | URL) => {
    seen.push((input as Request).url);
    if (hold) {
      await new Promise<void>(resolve => gates.push(resolve));
    }
    const a = answers[Math.min(seen.length, answers.length) - 1];
    return new Response(JSON.stringify(a.body), { status: a.status, headers: { 'Content-Type': 'application/json' } });
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://127.0.0.1:9999/user/alice/',
    wsUrl: 'ws://127.0.0.1:9999/user/alice/',
    token: '',
    fetch: fetchStub as typeof fetch
  });
  const store = new XgenStore({ settings });
  return {
    store,
    seen,
    holdAnswers: () => (hold = true),
    release: () => {
      hold = false;
      gates.splice(0).forEach(g => g());
    }
  };
}

const settle = () => new Promise(resolve => setTimeout(resolve, 20));

describe('XgenStore box listing', () => {
  it('fetches servers?scope=box under the base_url into the state', async () => {
    const { store, seen } = storeAnswering([{ status: 200, body: { servers: [boxEntry('bob', 'bob-7')] } }]);
    await store.refreshBox();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^http:\/\/127\.0\.0\.1:9999\/user\/alice\/xgen\/api\/servers\?scope=box(&\d+)?$/);
    expect(store.state.box!.map(e => `${e.owner}/${e.name}`)).toEqual(['bob/bob-7']);
    store.dispose();
  });

  it('refetches on every server state event and on hello', async () => {
    const { store, seen } = storeAnswering([{ status: 200, body: { servers: [] } }]);
    store.dispatch({ kind: 'hello', servers: [], hardware: null });
    await settle();
    store.dispatch({ kind: 'state', server: 'm', data: server('m', 'ready') });
    await settle();
    store.dispatch({ kind: 'progress', server: 'm', data: { progress: 0.5, message: 'x' } });
    store.dispatch({ kind: 'gpus', data: { gpus: [], time: 1 } });
    await settle();
    expect(seen).toHaveLength(2);
    store.dispose();
  });

  it('folds a burst of state events into one more fetch', async () => {
    const { store, seen, holdAnswers, release } = storeAnswering([
      { status: 200, body: { servers: [boxEntry('bob', 'bob-7')] } },
      { status: 200, body: { servers: [boxEntry('bob', 'bob-7'), boxEntry('carol', 'c-1')] } }
    ]);
    holdAnswers();
    for (const st of ['starting', 'loading', 'ready'] as const) {
      store.dispatch({ kind: 'state', server: 'm', data: server('m', st) });
    }
    await settle();
    expect(seen).toHaveLength(1);
    release();
    await store.refreshBox();
    await settle();
    expect(seen).toHaveLength(2);
    // The answer that came last wins.
    expect(store.state.box!.map(e => e.name)).toEqual(['bob-7', 'c-1']);
    store.dispose();
  });

  it('records a failed refresh without dropping the last listing', async () => {
    const { store } = storeAnswering([
      { status: 200, body: { servers: [boxEntry('bob', 'bob-7')] } },
      { status: 500, body: { error: 'XGenError', message: 'the box registry is locked', hint: null } }
    ]);
    await store.refreshBox();
    await store.refreshBox();
    expect(store.state.boxError).toBe('the box registry is locked');
    expect(store.state.box).toHaveLength(1);
    store.dispose();
  });
});

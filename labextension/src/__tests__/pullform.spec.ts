// @vitest-environment happy-dom
import { beforeEach, describe, expect, it } from 'vitest';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';
import { initialState, reduce } from '../model';
import { XgenStore } from '../store';
import { IPullJob } from '../types';
import { PullForm, pullText } from '../widgets/pullform';

const job = (state: IPullJob['state'], extra: Partial<IPullJob> = {}): IPullJob => ({
  id: '1',
  spec: 'acme/tiny-GGUF',
  state,
  progress: null,
  result: null,
  error: null,
  ...extra
});
const progress = (fraction: number, state: 'downloading' | 'waiting' | 'verifying' = 'downloading') => ({
  repo: 'acme/tiny-GGUF',
  file: 'tiny-Q4_K_M.gguf',
  done: fraction * 2e9,
  total: 2e9,
  fraction,
  rate: 35e6,
  state
});

/** A form on a store whose POST xgen/api/pulls goes to a stub (the store and requestAPI are real). */
function formAnswering(status: number, body: unknown) {
  const seen: { url: string; body: string }[] = [];
  const fetchStub = async (input: RequestInfo | URL) => {
    const req = input as Request;
    seen.push({ url: req.url.split('?')[0], body: await req.text() }); // less the cache-busting query
    return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://127.0.0.1:9999/user/alice/',
    wsUrl: 'ws://127.0.0.1:9999/user/alice/',
    token: '',
    fetch: fetchStub as typeof fetch
  });
  const store = new XgenStore({ settings });
  const form = new PullForm(store);
  store.changed.connect((_, state) => form.render(state));
  Widget.attach(form, document.body);
  return { store, form, seen };
}

const q = (form: PullForm, id: string) => form.node.querySelector(`[data-testid="${id}"]`) as HTMLElement;

beforeEach(() => {
  document.body.textContent = '';
});

describe('pull events', () => {
  it('keep the latest job by id', () => {
    const s = [job('running'), job('running', { progress: progress(0.5) })].reduce(
      (st, j) => reduce(st, { kind: 'pull', job: j }),
      initialState
    );
    expect(Object.keys(s.pulls)).toEqual(['1']);
    expect(s.pulls['1'].progress?.fraction).toBe(0.5);
  });

  it('read as one line', () => {
    expect(pullText(progress(0.5))).toMatch(/^tiny-Q4_K_M\.gguf: 50% of .+, .+\/s$/);
    expect(pullText(progress(0.2, 'waiting'))).toContain('another pull');
    expect(pullText(progress(1, 'verifying'))).toContain('sha256');
  });
});

describe('PullForm', () => {
  it('posts the repo, shows the progress events, then says what to load', async () => {
    const { store, form, seen } = formAnswering(202, job('running'));
    let pulled: IPullJob | null = null;
    form.onPulled = j => (pulled = j);
    (form.node.querySelector('input[name="spec"]') as HTMLInputElement).value = ' acme/tiny-GGUF:Q8_0 ';
    form.node.dispatchEvent(new Event('submit'));
    await new Promise(resolve => setTimeout(resolve, 20));
    expect(seen).toEqual([{ url: 'http://127.0.0.1:9999/user/alice/xgen/api/pulls', body: '{"model":"acme/tiny-GGUF:Q8_0"}' }]);
    expect((q(form, 'xgen-pull-button') as HTMLButtonElement).disabled).toBe(true);
    store.dispatch({ kind: 'pull', job: job('running', { progress: progress(0.45) }) });
    expect(q(form, 'xgen-pull-progress').hidden).toBe(false);
    expect((form.node.querySelector('.xgen-bar-fill') as HTMLElement).style.width).toBe('45%');
    expect(q(form, 'xgen-pull-progress').textContent).toContain('45% of');
    const result = { name: 'tiny-Q8_0', path: '/m/tiny-Q8_0.gguf', format: 'gguf', size: 2e9, repo: 'acme/tiny-GGUF' };
    store.dispatch({ kind: 'pull', job: job('done', { result }) });
    expect(q(form, 'xgen-pull-progress').hidden).toBe(true);
    expect(q(form, 'xgen-pull-message').textContent).toContain('Pulled tiny-Q8_0');
    expect(pulled!.result!.name).toBe('tiny-Q8_0');
    expect((q(form, 'xgen-pull-button') as HTMLButtonElement).disabled).toBe(false);
  });

  it('shows a failed pull with its hint, and a refused spec at once', async () => {
    const { store, form } = formAnswering(202, job('running'));
    await form.submit('acme/tiny-GGUF:Q2_K');
    const error = { error: 'ModelError', message: 'acme/tiny-GGUF: the quant Q2_K is not there', hint: 'pick one of: Q4_K_M' };
    store.dispatch({ kind: 'pull', job: job('failed', { error }) });
    const msg = q(form, 'xgen-pull-message');
    expect(msg.textContent).toBe('acme/tiny-GGUF: the quant Q2_K is not there (pick one of: Q4_K_M)');
    expect(msg.classList.contains('xgen-error')).toBe(true);

    const bad = formAnswering(400, { error: 'ModelError', message: "'x' is not a Hugging Face model repo", hint: null });
    await bad.form.submit('x y');
    expect(q(bad.form, 'xgen-pull-message').textContent).toContain('is not a Hugging Face model repo');
    expect((q(bad.form, 'xgen-pull-button') as HTMLButtonElement).disabled).toBe(false);
  });
});

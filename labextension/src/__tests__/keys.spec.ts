// @vitest-environment happy-dom
import { beforeEach, describe, expect, it } from 'vitest';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';
import { IApiKey, KeysPanel, parseModels, usageText } from '../widgets/keys';

/** A panel whose xgen/api/keys calls go to a stub keeping keys in memory, as the REST API answers. */
function panel() {
  const keys: IApiKey[] = [];
  const seen: { method: string; url: string; body: string }[] = [];
  let n = 0;
  const reply = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  const fetchStub = async (input: RequestInfo | URL) => {
    const req = input as Request;
    const url = req.url.split('?')[0];
    const body = await req.text();
    seen.push({ method: req.method, url, body });
    const id = url.split('/keys/')[1];
    if (req.method === 'GET') {
      return reply(200, { keys: keys.map(k => ({ ...k, key: undefined })) });
    }
    if (req.method === 'POST') {
      const data = JSON.parse(body);
      if (!data.name) {
        return reply(400, { error: 'RequestError', message: "a key needs a 'name'", hint: null });
      }
      n += 1;
      const made: IApiKey = { id: `00000000000${n}`, name: data.name, owner: 'alice', models: data.models ?? null,
        created_at: 1, last_used: null, requests: 0, prompt_tokens: 0, completion_tokens: 0 };
      keys.push(made);
      return reply(201, { ...made, key: `xgen-${made.id}-${'s'.repeat(43)}` });
    }
    const i = keys.findIndex(k => k.id === id);
    if (i < 0) {
      return reply(404, { error: 'KeyNotFound', message: `alice has no API key '${id}'`, hint: null });
    }
    keys.splice(i, 1);
    return reply(200, { id, revoked: true });
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://127.0.0.1:9999/user/alice/',
    wsUrl: 'ws://127.0.0.1:9999/user/alice/',
    token: '',
    fetch: fetchStub as typeof fetch
  });
  const widget = new KeysPanel({ settings });
  Widget.attach(widget, document.body);
  return { widget, seen, keys };
}

const q = (w: Widget, id: string) => w.node.querySelector(`[data-testid="${id}"]`) as HTMLElement;

beforeEach(() => {
  document.body.textContent = '';
});

describe('API keys section', () => {
  it('formats use and models', () => {
    expect(parseModels(' chat, embed,, ')).toEqual(['chat', 'embed']);
    expect(parseModels('  ')).toBeUndefined();
    const k = { requests: 1, prompt_tokens: 12, completion_tokens: 3 } as IApiKey;
    expect(usageText(k)).toBe('1 request, 12/3 tokens');
    expect(usageText({ ...k, requests: 0 })).toBe('not used yet');
  });

  it('creates a key, shows it once, lists it without the key, revokes it', async () => {
    const { widget, seen } = panel();
    await widget.refresh();
    expect(q(widget, 'xgen-key-list').textContent).toContain('No keys yet.');
    (q(widget, 'xgen-key-name') as HTMLInputElement).value = 'ci';
    (q(widget, 'xgen-key-models') as HTMLInputElement).value = 'chat';
    const made = await widget.create('ci', parseModels('chat'));
    expect(made?.key).toMatch(/^xgen-/);
    const post = seen.find(s => s.method === 'POST');
    expect(post?.url).toBe('http://127.0.0.1:9999/user/alice/xgen/api/keys');
    expect(JSON.parse(post!.body)).toEqual({ name: 'ci', models: ['chat'] });
    const shown = q(widget, 'xgen-key-value') as HTMLInputElement;
    expect(shown.value).toBe(made!.key);
    expect(q(widget, 'xgen-key-created').textContent).toContain('http://127.0.0.1:9999/user/alice/xgen/v1');
    const list = q(widget, 'xgen-key-list');
    expect(list.textContent).toContain('ci');
    expect(list.textContent).toContain('chat; not used yet');
    expect(list.textContent).not.toContain(made!.key!);
    q(widget, 'xgen-key-dismiss').click();
    expect(q(widget, 'xgen-key-created').hidden).toBe(true);
    expect(widget.node.textContent).not.toContain(made!.key!); // gone once dismissed

    await widget.revoke(made!.id);
    expect(seen.at(-2)).toMatchObject({ method: 'DELETE', url: `http://127.0.0.1:9999/user/alice/xgen/api/keys/${made!.id}` });
    expect(widget.keys).toEqual([]);
    expect(q(widget, 'xgen-key-message').textContent).toContain('Revoked');
  });

  it('says what is wrong instead of creating', async () => {
    const { widget, seen } = panel();
    expect(await widget.create('')).toBeNull();
    expect(seen).toEqual([]);
    expect(q(widget, 'xgen-key-message').textContent).toContain('Name the key');
    await widget.revoke('nope');
    expect(q(widget, 'xgen-key-message').textContent).toContain("alice has no API key 'nope'");
    expect(q(widget, 'xgen-key-message').classList.contains('xgen-error')).toBe(true);
  });
});

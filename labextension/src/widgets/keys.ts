/**
 * "API keys": keys that open only the OpenAI-compatible proxy (xgen/v1), for scripts and tools
 * outside the browser. A new key is shown once, here; the list never holds keys, only their use.
 */
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';
import { proxyUrl, requestAPI } from '../api';
import { h, setChildren } from '../dom';

export interface IApiKey {
  id: string;
  name: string;
  owner: string;
  models: string[] | null;
  created_at: number;
  last_used: number | null;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  key?: string; // only in the answer that created it
}

/** `12 requests, 340/95 tokens` (prompt/completion). */
export function usageText(k: IApiKey): string {
  const reqs = `${k.requests} request${k.requests === 1 ? '' : 's'}`;
  return k.requests ? `${reqs}, ${k.prompt_tokens}/${k.completion_tokens} tokens` : 'not used yet';
}

/** `a, b` from `a, b,,` (an empty list: every model). */
export function parseModels(text: string): string[] | undefined {
  const models = text
    .split(',')
    .map(m => m.trim())
    .filter(m => m);
  return models.length ? models : undefined;
}

export class KeysPanel extends Widget {
  constructor(private readonly options: { settings?: ServerConnection.ISettings } = {}) {
    super({ node: document.createElement('form') });
    this.addClass('xgen-section');
    this.addClass('xgen-keys');
    this.node.dataset.testid = 'xgen-keys';
    this._name = h('input', { className: 'jp-mod-styled', name: 'name', type: 'text', placeholder: 'what uses it, e.g. ci',
      'data-testid': 'xgen-key-name' });
    this._models = h('input', { className: 'jp-mod-styled', name: 'models', type: 'text', placeholder: 'all models',
      title: 'Server names it opens, comma-separated; empty: every model', 'data-testid': 'xgen-key-models' });
    this._submit = h('button', { className: 'jp-mod-styled jp-mod-accept', type: 'submit',
      'data-testid': 'xgen-key-create' }, 'Create key');
    this._created = h('div', { className: 'xgen-key-created', 'data-testid': 'xgen-key-created', hidden: true });
    this._list = h('ul', { className: 'xgen-key-list', 'data-testid': 'xgen-key-list' });
    this._message = h('div', { className: 'xgen-load-message', 'data-testid': 'xgen-key-message' });
    setChildren(
      this.node,
      h('h3', { className: 'xgen-heading' }, 'API keys'),
      h('div', { className: 'xgen-muted' }, 'Open only the models (xgen/v1), never files or kernels.'),
      h('label', { className: 'xgen-field' }, h('span', {}, 'Name'), this._name),
      h('label', { className: 'xgen-field' }, h('span', {}, 'Models'), this._models),
      h('div', { className: 'xgen-form-actions' }, this._submit),
      this._created,
      this._message,
      this._list
    );
    this.node.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.create(this._name.value.trim(), parseModels(this._models.value));
    });
  }

  get keys(): IApiKey[] {
    return this._keys;
  }

  async refresh(): Promise<void> {
    try {
      const answer = await requestAPI<{ keys: IApiKey[] }>(['keys'], {}, undefined, this.options.settings);
      this._keys = answer.keys;
      this.renderList();
    } catch (err) {
      this.showMessage(err instanceof Error ? err.message : String(err), true);
    }
  }

  async create(name: string, models?: string[]): Promise<IApiKey | null> {
    if (!name) {
      this.showMessage('Name the key after what will use it, e.g. ci', true);
      return null;
    }
    this._submit.disabled = true;
    this.showMessage('', false);
    try {
      const init = { method: 'POST', body: JSON.stringify(models ? { name, models } : { name }) };
      const made = await requestAPI<IApiKey>(['keys'], init, undefined, this.options.settings);
      this.showKey(made);
      this._name.value = '';
      await this.refresh();
      return made;
    } catch (err) {
      this.showMessage(err instanceof Error ? err.message : String(err), true);
      return null;
    } finally {
      this._submit.disabled = false;
    }
  }

  async revoke(id: string): Promise<void> {
    try {
      await requestAPI(['keys', id], { method: 'DELETE' }, undefined, this.options.settings);
      this.showMessage('Revoked: the proxy refuses it from now on.', false);
    } catch (err) {
      this.showMessage(err instanceof Error ? err.message : String(err), true);
    }
    await this.refresh();
  }

  /** The new key, once: a read-only field to copy from, gone when dismissed (or at the next key). */
  private showKey(made: IApiKey): void {
    const base = proxyUrl((this.options.settings ?? ServerConnection.makeSettings()).baseUrl);
    const field = h('input', { className: 'jp-mod-styled', readonly: true, value: made.key ?? '',
      'data-testid': 'xgen-key-value' });
    this._created.hidden = false;
    setChildren(
      this._created,
      h('div', {}, `Key "${made.name}": copy it now, it is not shown again. Base URL: ${base}`),
      field,
      h('button', { className: 'jp-mod-styled', type: 'button', 'data-testid': 'xgen-key-dismiss',
        onclick: () => this.dismissKey() }, 'Done')
    );
    field.select();
  }

  dismissKey(): void {
    setChildren(this._created);
    this._created.hidden = true;
  }

  private renderList(): void {
    setChildren(
      this._list,
      this._keys.length === 0
        ? h('li', { className: 'xgen-muted' }, 'No keys yet.')
        : this._keys.map(k =>
            h('li', { className: 'xgen-key', 'data-testid': `xgen-key-${k.id}` },
              h('span', { className: 'xgen-key-name' }, k.name),
              h('span', { className: 'xgen-muted' }, ` ${k.models ? k.models.join(', ') : 'all models'}; ${usageText(k)}`),
              h('button', { className: 'jp-mod-styled jp-mod-warn', type: 'button', title: `Revoke ${k.name} (${k.id})`,
                'data-testid': `xgen-key-revoke-${k.id}`, onclick: () => void this.revoke(k.id) }, 'Revoke'))
          )
    );
  }

  private showMessage(text: string, error: boolean): void {
    this._message.textContent = text;
    this._message.classList.toggle('xgen-error', error);
  }

  private _keys: IApiKey[] = [];
  private readonly _name: HTMLInputElement;
  private readonly _models: HTMLInputElement;
  private readonly _submit: HTMLButtonElement;
  private readonly _created: HTMLElement;
  private readonly _list: HTMLElement;
  private readonly _message: HTMLElement;
}

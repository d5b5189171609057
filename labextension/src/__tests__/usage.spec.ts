// @vitest-environment happy-dom
import { beforeEach, describe, expect, it } from 'vitest';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';
import { IUsageRow, UsagePanel, formatByteSeconds, formatCount } from '../widgets/usage';

const GIB = 1024 ** 3;

/** The books as GET xgen/api/usage answers them: alice's rows, or (scope=box) alice's and bob's. */
const BOOKS: IUsageRow[] = [
  { user: 'alice', model: 'chat', requests: 3, prompt_tokens: 120, completion_tokens: 45,
    gpu_byte_seconds: 0, host_byte_seconds: 90 * GIB },
  { user: 'alice', model: 'embed', requests: 1200, prompt_tokens: 2_500_000, completion_tokens: 0,
    gpu_byte_seconds: 2 * 3600 * GIB, host_byte_seconds: 0 },
  { user: 'bob', model: 'chat', requests: 1, prompt_tokens: 10, completion_tokens: 4,
    gpu_byte_seconds: 0, host_byte_seconds: 5 * GIB }
];

function panel(status = 200) {
  const asked: string[] = [];
  const fetchStub = async (input: RequestInfo | URL) => {
    const url = new URL((input as Request).url);
    asked.push(`${url.pathname}?scope=${url.searchParams.get('scope')}`); // (a cache-buster follows)
    if (status !== 200) {
      return new Response(JSON.stringify({ error: 'XGenError', message: 'the usage books failed', hint: null }),
        { status, headers: { 'Content-Type': 'application/json' } });
    }
    const scope = url.searchParams.get('scope') === 'box' ? 'box' : 'mine';
    const rows = BOOKS.filter(r => scope === 'box' || r.user === 'alice');
    const sum = (k: keyof IUsageRow) => rows.reduce((n, r) => n + (r[k] as number), 0);
    const totals = { requests: sum('requests'), prompt_tokens: sum('prompt_tokens'),
      completion_tokens: sum('completion_tokens'), gpu_byte_seconds: sum('gpu_byte_seconds'),
      host_byte_seconds: sum('host_byte_seconds') };
    return new Response(JSON.stringify({ scope, user: 'alice', time: 1, rows, totals }),
      { status: 200, headers: { 'Content-Type': 'application/json' } });
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://127.0.0.1:9999/user/alice/', wsUrl: 'ws://127.0.0.1:9999/user/alice/', token: '',
    fetch: fetchStub as typeof fetch
  });
  const widget = new UsagePanel({ settings, every: 0 });
  Widget.attach(widget, document.body);
  return { widget, asked };
}

const q = (w: Widget, sel: string) => Array.from(w.node.querySelectorAll(sel)) as HTMLElement[];
const cells = (row: HTMLElement) => Array.from(row.querySelectorAll('td')).map(td => td.textContent);

beforeEach(() => {
  document.body.textContent = '';
});

describe('usage section', () => {
  it('formats counts and memory over time', () => {
    expect(formatCount(999)).toBe('999');
    expect(formatCount(1200)).toBe('1.2k');
    expect(formatCount(2_500_000)).toBe('2.5M');
    expect(formatByteSeconds(90 * GIB)).toBe('90.0 GiB·s');
    expect(formatByteSeconds(2 * 3600 * GIB)).toBe('2.00 GiB·h');
    expect(formatByteSeconds(0)).toBe('0.0 GiB·s');
  });

  it('shows my rows with a total, then the whole box with users', async () => {
    const { widget, asked } = panel();
    await widget.refresh();
    expect(asked).toEqual(['/user/alice/xgen/api/usage?scope=mine']);
    const mine = q(widget, '[data-testid="xgen-usage-row"]');
    expect(mine.map(r => r.dataset.model)).toEqual(['chat', 'embed']);
    expect(cells(mine[0])).toEqual(['chat', '3', '120/45', '0.0 GiB·s', '90.0 GiB·s']);
    expect(cells(mine[1])).toEqual(['embed', '1.2k', '2.5M/0', '2.00 GiB·h', '0.0 GiB·s']);
    expect(cells(q(widget, '[data-testid="xgen-usage-total"]')[0])).toEqual(
      ['Total', '1.2k', '2.5M/45', '2.00 GiB·h', '90.0 GiB·s']);

    const select = q(widget, '[data-testid="xgen-usage-scope"]')[0] as HTMLSelectElement;
    select.value = 'box';
    await widget.refresh();
    expect(asked[1]).toBe('/user/alice/xgen/api/usage?scope=box');
    const box = q(widget, '[data-testid="xgen-usage-row"]');
    expect(box.map(r => `${r.dataset.user}/${r.dataset.model}`)).toEqual(['alice/chat', 'alice/embed', 'bob/chat']);
    expect(cells(box[0])[0]).toBe('you'); // my rows say so; others by name
    expect(cells(box[2]).slice(0, 3)).toEqual(['bob', 'chat', '1']);
    expect(q(widget, 'th').map(th => th.textContent)[0]).toBe('User');
  });

  it('says when nothing is booked, and shows an error without losing the section', async () => {
    const { widget } = panel(500);
    await widget.refresh();
    const msg = q(widget, '[data-testid="xgen-usage-message"]')[0];
    expect(msg.textContent).toContain('the usage books failed');
    expect(msg.classList.contains('xgen-error')).toBe(true);
    expect(q(widget, '[data-testid="xgen-usage-row"]')).toHaveLength(0);
  });
});

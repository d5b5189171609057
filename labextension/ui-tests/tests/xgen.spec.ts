/**
 * The sidebar end to end: a real Jupyter server (under a non-root base_url), the
 * xgen server extension and the real default engine (llama-server/llama-cpp on CPU).
 */
import { expect, IJupyterLabPageFixture, test as base } from '@jupyterlab/galata';
import * as path from 'path';
import { baseUrl, originOf, SHOTS, tmpPathUnder, unloadAll } from './server';

const SIDEBAR = '#xgen-sidebar';
const origin = originOf('28731');

async function openSidebar(page: IJupyterLabPageFixture): Promise<void> {
  await page.sidebar.openTab('xgen-sidebar');
  await expect(page.locator(SIDEBAR)).toBeVisible();
  // The events websocket says hello: the connection banner goes away.
  await expect(page.locator(SIDEBAR)).toHaveAttribute('data-connected', 'true');
}

/** Widen the left area so screenshots show the sidebar as a user would size it. */
async function widenSidebar(page: IJupyterLabPageFixture, by = 130): Promise<void> {
  const handle = page.locator('#jp-main-split-panel > .lm-SplitPanel-handle').first();
  const box = (await handle.boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + by, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
}

const test = base.extend({
  tmpPath: tmpPathUnder(origin, 'xgen')
});

test.describe('xgen sidebar', () => {
  test.beforeAll(async ({ request }) => unloadAll(request, origin));
  test.afterAll(async ({ request }) => unloadAll(request, origin));

  test('has its own icon, palette commands, and is restored after a reload', async ({ page }) => {
    const tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="xgen-sidebar"]');
    await expect(tab).toBeVisible();
    await expect(tab.locator('svg[data-icon="xgen:logo"]')).toHaveCount(1);

    const labels = await page.evaluate(() => {
      const commands = (window as any).jupyterapp.commands;
      return ['xgen:load', 'xgen:unload', 'xgen:open'].map(id => commands.label(id));
    });
    expect(labels).toEqual(['xgen: Load model…', 'xgen: Unload model…', 'xgen: Open panel']);

    await page.keyboard.press('Control+Shift+C');
    await page.locator('#modal-command-palette input').fill('xgen:');
    await expect(page.locator('#modal-command-palette .lm-CommandPalette-item')).toHaveCount(3);
    await page.keyboard.press('Escape');

    // The layout is saved (debounced) after the panel opens; reload only after that.
    const saved = page.waitForRequest(r => /api\/workspaces/.test(r.url()) && r.method() === 'PUT');
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('xgen:open'));
    await expect(page.locator(SIDEBAR)).toBeVisible();
    await expect(page.locator(SIDEBAR)).toHaveAttribute('data-connected', 'true');
    // Hardware: GPU rows on a GPU box, the CPU line always.
    await expect(page.getByTestId('xgen-cpu')).toBeVisible();
    await expect(page.getByTestId('xgen-model-select').locator('option[value="default"]')).toHaveCount(1);
    await expect(page.getByTestId('xgen-backend-select').locator('option').first()).toHaveText('auto');

    await saved;
    await page.reload();
    await expect(page.locator(SIDEBAR)).toBeVisible();
  });

  test('ships its settings schema (GPU refresh interval)', async ({ request }) => {
    const res = await request.get(`${origin}${baseUrl}lab/api/settings/xgen-jupyter:plugin`);
    expect(res.ok()).toBe(true);
    const body = await res.json();
    expect(body.schema.properties.refreshInterval.default).toBe(2);
  });

  test('loads the default model, streams its log, chats from a notebook, unloads', async ({ page }) => {
    const errors: string[] = [];
    page.on('pageerror', err => errors.push(String(err)));
    await openSidebar(page);
    const form = page.getByTestId('xgen-load-form');
    await form.getByTestId('xgen-model-select').selectOption('default');
    await form.getByTestId('xgen-backend-select').selectOption('auto');
    await form.getByTestId('xgen-ctx-input').fill('2048');

    // Before Load: the plan's preview (POST xgen/api/plan, nothing started) shows host RAM
    // planned against what is free now, and the predicted tokens/s.
    const preview = form.getByTestId('xgen-plan-preview');
    await expect(preview.locator('[data-key="host"]')).toContainText(/planned of .* free/, { timeout: 30 * 1000 });
    await expect(preview.getByTestId('xgen-preview-speed').first()).toContainText('t/s decode');
    await expect(page.getByTestId('xgen-server-row')).toHaveCount(0);

    // Note whether the progress indicator ever shows (loading can be quick).
    await page.evaluate(() => {
      const el = document.querySelector('[data-testid="xgen-load-progress"]') as HTMLElement;
      (window as any).__xgenProgressSeen = false;
      new MutationObserver(() => {
        if (!el.hidden) {
          (window as any).__xgenProgressSeen = true;
        }
      }).observe(el, { attributes: true, childList: true, subtree: true });
    });
    await form.getByTestId('xgen-load-button').click();

    const row = page.getByTestId('xgen-server-row');
    await expect(row).toHaveCount(1);
    const name = (await row.getAttribute('data-name'))!;
    expect(name).toBeTruthy();
    await expect(row.getByTestId('xgen-server-state')).toHaveText('ready', { timeout: 180 * 1000 });
    expect(await page.evaluate(() => (window as any).__xgenProgressSeen)).toBe(true);
    await expect(form.getByTestId('xgen-load-message')).toContainText('ready');

    // State, backend, endpoint and the plan's reasons.
    await expect(row.getByTestId('xgen-server-backend')).not.toBeEmpty();
    await expect(row.getByTestId('xgen-server-endpoint')).toContainText('http');
    // The proxy URL the sidebar shows keeps the base_url.
    const proxy = (await row.getByTestId('xgen-server-proxy').textContent())!;
    expect(proxy).toBe(`${origin}${baseUrl}xgen/v1`);
    await expect(row.locator('.xgen-reason').first()).toBeAttached();

    // "On this box" (servers?scope=box) lists it as the user's own.
    const boxRow = page.locator(`[data-testid="xgen-box-row"][data-name="${name}"]`);
    await expect(boxRow.getByTestId('xgen-box-owner')).toHaveText('you');
    await expect(boxRow.getByTestId('xgen-box-state')).toHaveText('ready');

    // The log view follows the new server over its websocket.
    await expect(page.getByTestId('xgen-log-title')).toHaveText(name);
    await expect(page.getByTestId('xgen-log-status')).toHaveText('live');
    await expect.poll(() => page.locator('.xgen-log-line').count()).toBeGreaterThan(3);

    if (SHOTS) {
      await widenSidebar(page);
      await row.locator('details.xgen-reasons').evaluate(d => ((d as HTMLDetailsElement).open = true));
      await page.locator(SIDEBAR).screenshot({ path: path.join(SHOTS, 'sidebar.png') });
    }

    // Chat once through the authenticated proxy from a notebook cell.
    await page.notebook.createNew('chat.ipynb');
    const code = [
      'from openai import OpenAI',
      `client = OpenAI(base_url="${proxy}", api_key="unused")`,
      'r = client.chat.completions.create(',
      `    model="${name}", max_tokens=16,`,
      '    messages=[{"role": "user", "content": "Say hello in one word."}])',
      'print("REPLY:", repr(r.choices[0].message.content))'
    ].join('\n');
    await page.notebook.setCell(0, 'code', code);
    await page.notebook.runCell(0);
    await expect
      .poll(async () => ((await page.notebook.getCellTextOutput(0)) ?? []).join('\n'), { timeout: 120 * 1000 })
      .toMatch(/REPLY: '.+'/s);
    await page.notebook.close(true);

    // The Usage section (GET xgen/api/usage, the box registry's books) counts that answer.
    await openSidebar(page);
    const usage = page.getByTestId('xgen-usage');
    await usage.getByTestId('xgen-usage-refresh').click();
    const usageRow = usage.locator(`[data-testid="xgen-usage-row"][data-model="${name}"]`);
    await expect(usageRow.locator('td').nth(1)).toHaveText('1');
    await expect(usageRow.locator('td').nth(2)).toHaveText(/^[1-9]\d*\/[1-9]\d*$/); // tokens in/out
    await usage.getByTestId('xgen-usage-scope').selectOption('box');
    await expect(usage.locator('th').first()).toHaveText('User');
    await expect(usageRow.locator('td').first()).toHaveText('you');

    // Unload from the sidebar: the row goes away.
    await page.locator(`[data-testid="xgen-server-row"][data-name="${name}"]`).getByTestId('xgen-unload').click();
    await expect(page.getByTestId('xgen-server-row')).toHaveCount(0, { timeout: 60 * 1000 });
    await expect(page.getByTestId('xgen-no-servers')).toBeVisible();
    await expect(page.locator(`[data-testid="xgen-box-row"][data-name="${name}"]`)).toHaveCount(0);
    expect(errors).toEqual([]);
  });
});

/**
 * The CI box has no GPU, so the GPU table is fed a real recording: the NVML answers
 * of the lent NVIDIA H100 80GB HBM3 in tests/fixtures/devices/nvidia-h100.nvml.json
 * (recorded 2026-11-27), shaped as the events websocket sends GPUs. Everything else
 * on the socket is the real server's.
 */
const RECORDED_H100 = {
  index: 0,
  name: 'NVIDIA H100 80GB HBM3',
  vendor: 'nvidia',
  memory_total: 85520809984,
  memory_free: 85017493504,
  memory_used: 503316480,
  arch: 'sm_90',
  compute_capability: '9.0',
  family: 'hopper',
  integrated: false,
  pci_bus_id: '00000000:00:06.0',
  uuid: 'GPU-a2e344e3-01af-ef82-4e20-0736cfd3aa28',
  mig: false,
  utilization: 0,
  source: 'nvml'
};

test.describe('xgen sidebar with a recorded GPU', () => {
  test.use({ autoGoto: false });

  test('shows each GPU with its memory bar and utilisation', async ({ page }) => {
    let samples = 0;
    await page.routeWebSocket(/xgen\/api\/events/, ws => {
      const server = ws.connectToServer();
      server.onMessage(message => {
        const msg = JSON.parse(String(message));
        if (msg.kind === 'hello' && msg.hardware) {
          msg.hardware.gpus = [RECORDED_H100];
        } else if (msg.kind === 'gpus') {
          samples += 1;
          msg.data.gpus = [{ ...RECORDED_H100, utilization: samples % 2 ? 0 : 1 }];
        }
        ws.send(JSON.stringify(msg));
      });
    });
    await page.goto();
    await openSidebar(page);
    const row = page.getByTestId('xgen-gpu-row');
    await expect(row).toHaveCount(1);
    await expect(row).toContainText('NVIDIA H100 80GB HBM3');
    await expect(row.getByTestId('xgen-gpu-mem')).toHaveText('480 MiB / 79.6 GiB');
    await expect(row.getByTestId('xgen-gpu-util')).toHaveText(/^[01]%$/);
    await expect(page.getByTestId('xgen-cpu')).toContainText('CPU:');
    if (SHOTS) {
      await widenSidebar(page);
      await page.locator(SIDEBAR).screenshot({ path: path.join(SHOTS, 'sidebar-gpu.png') });
    }
  });
});

/**
 * The `%xgen panel` ipywidgets panel in JupyterLab: a real kernel started by the real
 * Jupyter server (so the magics find their server by parent pid), the real default
 * engine, and the panel's widgets rendered by @jupyter-widgets/jupyterlab-manager.
 * The panel learns every state from the extension's events websocket, so the row going
 * to "stopped" after `%xgen unload` in another cell is the live update under test.
 */
import { expect, IJupyterLabPageFixture, test as base } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';
import * as path from 'path';
import { baseUrl, originOf, SHOTS, tmpPathUnder, unloadAll } from './server';

const origin = originOf('28731');
const NAME = 'panel-demo';

const test = base.extend({
  tmpPath: tmpPathUnder(origin, 'xgen')
});

async function run(page: IJupyterLabPageFixture, index: number, source: string): Promise<void> {
  if (index > 0) {
    await page.notebook.addCell('code', source);
  } else {
    await page.notebook.setCell(0, 'code', source);
  }
  // In place: "run and advance" would insert an empty cell below the last one.
  await page.notebook.runCell(index, { inplace: true });
}

async function cellText(page: IJupyterLabPageFixture, index: number): Promise<string> {
  return ((await page.notebook.getCellTextOutput(index)) ?? []).join('\n');
}

/** A server's head row in the panel: the HBox holding its title (HTML), then its state (a Label). */
function serverRow(panel: Locator, name: string): Locator {
  return panel
    .locator('.widget-hbox')
    .filter({ has: panel.page().locator('.widget-html', { hasText: name }) });
}

test.describe('xgen notebook panel', () => {
  // Tall enough that the whole panel fits above the status bar in its screenshot.
  test.use({ viewport: { width: 1280, height: 1200 } });
  test.beforeAll(async ({ request }) => unloadAll(request, origin));
  test.afterAll(async ({ request }) => unloadAll(request, origin));

  test('%xgen panel renders its widgets and follows a server from ready to stopped', async ({ page }) => {
    const errors: string[] = [];
    page.on('pageerror', err => errors.push(String(err)));
    await page.notebook.createNew('panel.ipynb');
    // Room for the panel: the file browser would take a third of the width.
    await page.sidebar.close('left');

    await run(page, 0, '%load_ext xgen_jupyter');
    await run(page, 1, `%xgen load default --name ${NAME}`);
    await expect.poll(() => cellText(page, 1), { timeout: 180 * 1000 }).toContain('ready');

    await run(page, 2, '%xgen panel');
    const panel = (await page.notebook.getCellOutputLocator(2))!;
    // Widgets, not the "Loading widget..." / text fallback.
    await expect(panel.locator('.jp-OutputArea-output .widget-vbox').first()).toBeVisible();
    await expect(panel).not.toContainText('Error displaying widget');
    await expect(panel.locator('.widget-html', { hasText: /^xgen from / })).toBeVisible();

    // Hardware from the hello message: the CPU line (and a GPU row or the no-GPU note).
    await expect(panel.locator('.widget-label', { hasText: /^CPU: .+ threads/ })).toBeVisible();
    const gpuRows = await panel.locator('.widget-label', { hasText: /^\d+: / }).count();
    if (gpuRows === 0) {
      await expect(panel.locator('.widget-label', { hasText: 'no GPU found' })).toBeVisible();
    }

    // The server row: name, state ready, backend, endpoint, the plan's reasons.
    const row = serverRow(panel, NAME);
    await expect(row).toHaveCount(1);
    // Direct children only: an HTML widget carries its own (empty) description label.
    const state = row.locator(':scope > .widget-label').first();
    await expect(state).toHaveText('ready', { timeout: 60 * 1000 });
    await expect(row.locator('.widget-label', { hasText: /^http:\/\/127\.0\.0\.1:\d+/ })).toBeVisible();
    await expect(panel.locator('.widget-html li').first()).toBeVisible();

    // The load form: the model list comes from the server.
    await expect(panel.locator('.widget-html', { hasText: 'Load a model' })).toBeVisible();
    await expect(panel.locator('.widget-dropdown select').first()).toHaveValue('default');
    await expect(panel.locator('button', { hasText: /^load$/ })).toBeVisible();

    // The log view follows the server once its "logs" button is pressed.
    await row.locator('button', { hasText: 'logs' }).click();
    await expect(panel.locator('.widget-html', { hasText: `Log of ${NAME}` })).toBeVisible();
    const log = panel.locator('.widget-textarea textarea');
    await expect.poll(async () => (await log.inputValue()).split('\n').length).toBeGreaterThan(3);

    if (SHOTS) {
      await panel.scrollIntoViewIfNeeded();
      await panel.screenshot({ path: path.join(SHOTS, 'panel.png') });
    }

    // Unload from another cell: the panel hears it over the events websocket.
    await run(page, 3, `%xgen unload ${NAME}`);
    await expect(state).toHaveText('stopped', { timeout: 60 * 1000 });
    await expect(row.locator('button', { hasText: 'unload' })).toBeDisabled();
    expect(errors).toEqual([]);
    await page.notebook.close(true);
  });
});

/**
 * Jupyter AI's chat (the real jupyter-ai 3 from PyPI, Jupyternaut through LiteLLM) answering
 * from xgen: xgen wrote its models into Jupyternaut's config at start (a key scoped to xgen/v1,
 * nobody typed a URL or a key); the user opens a chat, picks "xgen · chat" (the default GGUF,
 * see jupyter_server_ai_config.py) and the answer streams in from the real engine.
 * Run by playwright-ai.config.js against a Jupyter from .venv-ai (scripts/setup-ai-venv.sh).
 */
import { expect, IJupyterLabPageFixture, test as base } from '@jupyterlab/galata';
import * as path from 'path';
import { baseUrl, originOf, SHOTS, tmpPathUnder, unloadAll } from './server';

const origin = originOf('28732');

const test = base.extend({
  tmpPath: tmpPathUnder(origin, 'xgen-ai')
});

async function openChat(page: IJupyterLabPageFixture): Promise<void> {
  // Jupyter AI's chats are .chat documents (jupyterlab-chat); this makes one in the current folder.
  await page.evaluate(() => (window as any).jupyterapp.commands.execute('jupyterlab-chat:createAndOpen', { name: 'xgen' }));
  await expect(page.locator('.jp-chat-input-container textarea').first()).toBeVisible();
  // Jupyternaut joined the chat: its persona button is in the input toolbar.
  await expect(page.locator('.jp-jai-personaControls-persona')).toHaveText('Jupyternaut');
}

test.describe('Jupyter AI on xgen models', () => {
  test.afterAll(async ({ request }) => unloadAll(request, origin)); // the engines the chat loaded

  test('the chat offers xgen models and answers from the default model', async ({ page, request }) => {
    // What xgen wrote: Jupyternaut's config lists xgen's models (keys never leave the server).
    const cfg = await request.get(`${origin}${baseUrl}api/jupyternaut/config`);
    expect(cfg.ok()).toBe(true);
    const config = await cfg.json();
    const names = config.custom_models.map((m: { name: string }) => m.name);
    expect(names).toEqual(expect.arrayContaining(['xgen · chat', 'xgen · default']));
    expect(JSON.stringify(config.custom_models)).toContain(`${origin}${baseUrl}xgen/v1`);

    await openChat(page);

    // Pick the xgen model in Jupyternaut's model picker.
    await page.locator('.jp-jai-personaControls-controls > button[title="Model"]').click();
    const option = page.getByText('xgen · chat', { exact: true });
    await expect(option).toBeVisible();
    await expect(page.getByText('xgen · default', { exact: true })).toBeVisible();
    if (SHOTS) {
      await page.screenshot({ path: path.join(SHOTS, 'jupyter-ai-models.png') });
    }
    await option.click();
    await expect(page.locator('.jp-jai-personaControls-controls > button[title="Model"]')).toContainText('xgen · chat');

    // Ask; the answer streams in as Jupyternaut's message (the engine loads on this first request).
    // Every 50 ms the page notes the length of the last reply's text: streaming shows as growth.
    await page.evaluate(() => {
      const seen: number[] = ((window as any).xgenReplyLengths = []);
      setInterval(() => {
        const bodies = document.querySelectorAll('.jp-chat-message .jp-chat-rendered-message');
        const n = bodies.length > 1 ? (bodies[bodies.length - 1].textContent || '').trim().length : 0;
        if (n && n !== seen[seen.length - 1]) {
          seen.push(n);
        }
      }, 50);
    });
    const keysBefore = await (await request.get(`${origin}${baseUrl}xgen/api/keys`)).json();
    expect(keysBefore.keys.find((k: { name: string }) => k.name === 'jupyter-ai').requests).toBe(0);
    const input = page.locator('.jp-chat-input-container textarea').first();
    await input.fill('Name three colors.');
    await input.press('Enter');
    const reply = page.locator('.jp-chat-message').filter({ hasText: 'Jupyternaut' }).last();
    const body = reply.locator('.jp-chat-rendered-message');
    await expect(body).toHaveText(/\S/, { timeout: 200 * 1000 });
    // Done when the stop button goes back to disabled; never an error message.
    await expect(page.locator('.jp-jai-stopButton')).toBeDisabled({ timeout: 200 * 1000 });
    const text = (await body.innerText()).trim();
    expect(text).not.toMatch(/error|exception/i);
    const lengths: number[] = await page.evaluate(() => (window as any).xgenReplyLengths);
    expect(lengths.length).toBeGreaterThan(1); // it grew in steps: streamed, not one block
    expect(lengths[lengths.length - 1]).toBe(text.length);

    // It went through xgen's proxy with Jupyter AI's key: counted there.
    const keys = await (await request.get(`${origin}${baseUrl}xgen/api/keys`)).json();
    const key = keys.keys.find((k: { name: string }) => k.name === 'jupyter-ai');
    expect(key.requests).toBeGreaterThanOrEqual(1); // the chat's request(s)
    const servers = await (await request.get(`${origin}${baseUrl}xgen/api/servers`)).json();
    expect(servers.servers.map((s: { name: string }) => s.name)).toContain('chat');
    if (SHOTS) {
      await page.screenshot({ path: path.join(SHOTS, 'jupyter-ai-chat.png') });
    }
  });
});

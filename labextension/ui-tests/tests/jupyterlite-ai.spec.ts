/**
 * jupyterlite-ai's chat (the real jupyterlite-ai from PyPI, in JupyterLab) on xgen, set up the
 * manual way docs/jupyter-ai.md gives: an API key made for it, then a Generic (OpenAI-compatible)
 * provider with xgen/v1 as base URL. The provider settings are put in place as its settings page
 * would save them (secrets manager off), through galata's settings fixture; the chat in the left
 * sidebar then streams an answer from the default model (the "chat" preset), from the browser,
 * through the proxy, with that key. Run by playwright-lite.config.js (a Jupyter from .venv-lite).
 */
import { expect, galata, test as base } from '@jupyterlab/galata';
import * as path from 'path';
import { baseUrl, originOf, SHOTS, tmpPathUnder, unloadAll } from './server';

const origin = originOf('28732');

const test = base.extend({
  tmpPath: tmpPathUnder(origin, 'xgen-lite'),
  /** Step 1: a key for jupyterlite-ai (POST xgen/api/keys, as `%xgen keys create` does). Step 2: the provider. */
  mockSettings: async ({ request }, use) => {
    const res = await request.post(`${origin}${baseUrl}xgen/api/keys`, { data: { name: 'jupyterlite-ai' } });
    expect(res.status()).toBe(201);
    const { key } = await res.json();
    await use({
      ...galata.DEFAULT_SETTINGS,
      '@jupyternaut/persona:settings-model': {
        useSecretsManager: false,
        defaultProvider: 'xgen',
        providers: [
          {
            id: 'xgen',
            name: 'xgen',
            provider: 'generic',
            model: 'chat',
            apiKey: key,
            baseURL: `${origin}${baseUrl}xgen/v1`,
            // The default model is a base model that rambles to the end of its context: keep it short.
            parameters: { maxOutputTokens: 24 }
          }
        ]
      }
    });
  }
});

async function keyRequests(request: any): Promise<number> {
  const { keys } = await (await request.get(`${origin}${baseUrl}xgen/api/keys`)).json();
  return keys.find((k: { name: string }) => k.name === 'jupyterlite-ai').requests;
}

test.describe('jupyterlite-ai on xgen models', () => {
  test.afterAll(async ({ request }) => unloadAll(request, origin)); // the engines the chat loaded

  test('the sidebar chat streams an answer from the default model', async ({ page, request }) => {
    expect(await keyRequests(request)).toBe(0);
    await page.sidebar.openTab('@jupyterlite/ai:chat-panel');
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('@jupyterlite/ai:open-chat'));
    const input = page.locator('#jp-left-stack textarea').first();
    await expect(input).toBeVisible();

    // Every 50 ms the page notes the length of the last reply's text: streaming shows as growth.
    await page.evaluate(() => {
      const seen: number[] = ((window as any).xgenReplyLengths = []);
      setInterval(() => {
        const bodies = document.querySelectorAll('#jp-left-stack .jp-chat-message .jp-chat-rendered-message');
        const n = bodies.length > 1 ? (bodies[bodies.length - 1].textContent || '').trim().length : 0;
        if (n && n !== seen[seen.length - 1]) {
          seen.push(n);
        }
      }, 50);
    });
    await input.fill('Name three colors.');
    await input.press('Enter');
    const body = page.locator('#jp-left-stack .jp-chat-message .jp-chat-rendered-message').nth(1);
    await expect(body).toHaveText(/\S/, { timeout: 200 * 1000 });
    // The answer is done when the proxy has counted the request on the key (after the last byte).
    await expect.poll(() => keyRequests(request), { timeout: 200 * 1000 }).toBeGreaterThanOrEqual(1);
    await expect(page.getByText('is typing')).toHaveCount(0, { timeout: 60 * 1000 });
    const text = (await body.innerText()).trim();
    expect(text).not.toMatch(/error|exception|unauthorized/i);
    const lengths: number[] = await page.evaluate(() => (window as any).xgenReplyLengths);
    expect(lengths.length).toBeGreaterThan(1); // it grew in steps: streamed, not one block
    const servers = await (await request.get(`${origin}${baseUrl}xgen/api/servers`)).json();
    expect(servers.servers.map((s: { name: string }) => s.name)).toContain('chat');
    if (SHOTS) {
      await page.screenshot({ path: path.join(SHOTS, 'jupyterlite-ai-chat.png') });
    }
  });
});

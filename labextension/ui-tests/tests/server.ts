/**
 * What every spec needs of the Jupyter server under test: its address (the port from
 * XGEN_UI_PORT, set by scripts/ui-tests.sh per run), a tmpPath fixture under its base_url, and
 * a way to unload every xgen server it runs.
 */
import { expect } from '@jupyterlab/galata';
import type { APIRequestContext, TestInfo } from '@playwright/test';

export const SHOTS = process.env.XGEN_SCREENSHOTS_DIR || '';
export const baseUrl = process.env.XGEN_UI_BASE_URL || '/xgen-ui/';

export function originOf(defaultPort: string): string {
  return `http://127.0.0.1:${process.env.XGEN_UI_PORT || defaultPort}`;
}

/** galata's own tmpPath creates the test folder at the server root, ignoring a base_url path:
 * this one creates it under the base_url. */
export function tmpPathUnder(origin: string, prefix: string) {
  return async (
    { request }: { request: APIRequestContext },
    use: (folder: string) => Promise<void>,
    testInfo: TestInfo
  ): Promise<void> => {
    const folder = `${prefix}-${testInfo.testId}`;
    const res = await request.put(`${origin}${baseUrl}api/contents/${folder}`, { data: { type: 'directory' } });
    expect(res.ok()).toBe(true);
    await use(folder);
  };
}

/** Stop every xgen server still running (the engines a test loaded). */
export async function unloadAll(request: APIRequestContext, origin: string): Promise<void> {
  const res = await request.get(`${origin}${baseUrl}xgen/api/servers`);
  if (!res.ok()) {
    return;
  }
  const { servers } = (await res.json()) as { servers: { name: string; state: string }[] };
  for (const s of servers.filter(s => s.state !== 'stopped')) {
    await request.delete(`${origin}${baseUrl}xgen/api/servers/${encodeURIComponent(s.name)}`);
  }
}

/**
 * Galata configuration: a real Jupyter server (webServer) with the xgen server
 * extension, driven by Debian's Chromium (no browser download).
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const port = process.env.XGEN_UI_PORT || '28731';
const baseUrl = process.env.XGEN_UI_BASE_URL || '/xgen-ui/';
const root = `http://127.0.0.1:${port}${baseUrl.replace(/\/$/, '')}`;

module.exports = {
  ...baseConfig,
  // Their own servers, with Jupyter AI or jupyterlite-ai: playwright-ai.config.js, playwright-lite.config.js.
  testIgnore: /jupyter(lite)?-ai\.spec\.ts/,
  // One engine on a small box: tests run one after another.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 240 * 1000,
  expect: { timeout: 30 * 1000 },
  reporter: [[process.env.CI ? 'list' : 'list'], ['html', { open: 'never' }]],
  use: {
    ...baseConfig.use,
    baseURL: root,
    trace: 'retain-on-failure',
    video: 'off',
    viewport: { width: 1280, height: 860 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run'
      ]
    }
  },
  webServer: {
    command: 'jlpm start',
    url: `${root}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: !process.env.CI,
    env: { ...process.env, XGEN_UI_PORT: port, XGEN_UI_BASE_URL: baseUrl }
  }
};

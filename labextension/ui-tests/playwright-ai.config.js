/**
 * Galata for the Jupyter AI spec: the same settings as playwright.config.js, but its own Jupyter
 * server, run by .venv-ai's Python (Jupyter AI installed beside xgen: scripts/setup-ai-venv.sh).
 */
const path = require('path');
const main = require('./playwright.config');

const port = process.env.XGEN_UI_PORT || '28732';
const baseUrl = process.env.XGEN_UI_BASE_URL || '/xgen-ui/';
const root = `http://127.0.0.1:${port}${baseUrl.replace(/\/$/, '')}`;
const python = process.env.XGEN_AI_PYTHON || path.resolve(__dirname, '../../.venv-ai/bin/python');

module.exports = {
  ...main,
  testIgnore: undefined,
  testMatch: /jupyter-ai\.spec\.ts/,
  // Not the main run's folder: both may run at once on a shared box.
  outputDir: 'test-results-ai',
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report-ai' }]],
  use: { ...main.use, baseURL: root },
  webServer: {
    ...main.webServer,
    command: `${python} -m jupyterlab --config jupyter_server_ai_config.py`,
    url: `${root}/lab`,
    timeout: 180 * 1000,
    env: {
      ...process.env,
      XGEN_UI_PORT: port,
      XGEN_UI_BASE_URL: baseUrl,
      // LiteLLM fetches a price list from GitHub at import unless told not to.
      LITELLM_LOCAL_MODEL_COST_MAP: 'True'
    }
  }
};

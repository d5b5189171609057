/**
 * Galata for the jupyterlite-ai spec: the Jupyter AI run's settings (playwright-ai.config.js), but a
 * Jupyter from .venv-lite (jupyterlite-ai cannot share .venv-ai: scripts/setup-ai-venv.sh).
 */
const path = require('path');
const ai = require('./playwright-ai.config');

const python = process.env.XGEN_LITE_PYTHON || path.resolve(__dirname, '../../.venv-lite/bin/python');

module.exports = {
  ...ai,
  testMatch: /jupyterlite-ai\.spec\.ts/,
  outputDir: 'test-results-lite',
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report-lite' }]],
  webServer: { ...ai.webServer, command: `${python} -m jupyterlab --config jupyter_server_ai_config.py` }
};

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { addCommands } from './commands';
import { xgenIcon } from './icon';
import { XgenSidebar } from './sidebar';
import { XgenStore } from './store';

const PLUGIN_ID = 'xgen-jupyter:plugin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'xgen sidebar: GPUs, model servers, a load form and live engine logs.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null
  ) => {
    let logTail = 500;
    const store = new XgenStore({ interval: 2 });
    const sidebar = new XgenSidebar(store, { logTail: () => logTail });
    sidebar.title.icon = xgenIcon;
    app.shell.add(sidebar, 'left', { rank: 900 });
    if (restorer) {
      restorer.add(sidebar, 'xgen-sidebar');
    }
    addCommands(app, sidebar, palette);

    const apply = (settings: ISettingRegistry.ISettings) => {
      store.interval = settings.get('refreshInterval').composite as number;
      logTail = settings.get('logTail').composite as number;
    };
    const ready = settingRegistry
      ? settingRegistry
          .load(PLUGIN_ID)
          .then(settings => {
            apply(settings);
            settings.changed.connect(apply);
          })
          .catch(reason => console.warn('xgen: could not load settings', reason))
      : Promise.resolve();
    // Connect after the settings are known, so the first sample rate is the user's.
    void ready.then(() => store.start());
  }
};

export default plugin;

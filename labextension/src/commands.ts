/** Palette commands: open the panel, load (form or args), unload (picker or args). */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, Notification } from '@jupyterlab/apputils';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { xgenIcon } from './icon';
import { isActive, serverList } from './model';
import { XgenSidebar } from './sidebar';
import { ILoadRequest } from './types';

export namespace CommandIDs {
  export const open = 'xgen:open';
  export const load = 'xgen:load';
  export const unload = 'xgen:unload';
}

function loadRequest(args: ReadonlyPartialJSONObject): ILoadRequest | null {
  if (typeof args.model !== 'string' || !args.model) {
    return null;
  }
  const req: ILoadRequest = { model: args.model };
  for (const key of ['name', 'backend', 'n_ctx', 'server_type', 'n_gpu_layers']) {
    if (args[key] !== undefined && args[key] !== null) {
      req[key] = args[key];
    }
  }
  return req;
}

export function addCommands(app: JupyterFrontEnd, sidebar: XgenSidebar, palette: ICommandPalette | null): void {
  const { commands, shell } = app;
  const open = () => shell.activateById(sidebar.id);

  commands.addCommand(CommandIDs.open, {
    label: 'xgen: Open panel',
    caption: 'Show the xgen sidebar: GPUs, model servers and logs',
    icon: xgenIcon,
    execute: () => open()
  });

  commands.addCommand(CommandIDs.load, {
    label: 'xgen: Load model…',
    caption: 'Load a model (with args {model, backend, n_ctx, name} it loads at once)',
    execute: async args => {
      open();
      const req = loadRequest(args);
      if (req) {
        await sidebar.form.submit(req);
      } else {
        sidebar.form.focusModel();
      }
    }
  });

  commands.addCommand(CommandIDs.unload, {
    label: 'xgen: Unload model…',
    caption: 'Stop a running model server',
    execute: async args => {
      let name = typeof args.name === 'string' ? args.name : null;
      if (!name) {
        const names = serverList(sidebar.store.state)
          .filter(s => isActive(s.state) || s.state === 'failed' || s.state === 'crashed')
          .map(s => s.name);
        if (!names.length) {
          Notification.info('xgen: no model is loaded.', { autoClose: 3000 });
          return;
        }
        const choice = await InputDialog.getItem({ title: 'Unload model', items: names, okLabel: 'Unload' });
        if (!choice.button.accept || !choice.value) {
          return;
        }
        name = choice.value;
      }
      try {
        await sidebar.store.unload(name);
      } catch (err) {
        Notification.error(`xgen: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  });

  if (palette) {
    for (const command of [CommandIDs.open, CommandIDs.load, CommandIDs.unload]) {
      palette.addItem({ command, category: 'xgen' });
    }
  }
}

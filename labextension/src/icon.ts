import { LabIcon } from '@jupyterlab/ui-components';
import xgenSvgstr from '../style/icons/xgen.svg';

export const xgenIcon = new LabIcon({ name: 'xgen:logo', svgstr: xgenSvgstr });

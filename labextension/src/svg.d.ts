// The JupyterLab builder imports .svg files from JS as their source text.
declare module '*.svg' {
  const value: string;
  export default value;
}

/** uPlot's browser build and stylesheet, imported `with { type: "text" }` (embedded in a compiled gateway). */
declare module "uplot/dist/uPlot.iife.min.js" {
  const text: string;
  export default text;
}
declare module "uplot/dist/uPlot.min.css" {
  const text: string;
  export default text;
}

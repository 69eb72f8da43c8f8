/** Handlebars templates are imported as text (Bun `with { type: "text" }`), so rendering needs no file I/O. */
declare module "*.hbs" {
  const text: string;
  export default text;
}

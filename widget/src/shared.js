/*
 * What the loader (flint.js, on the merchant's page) and the card frame (frame.js, on Flint's origin)
 * must agree on, in one place: the message envelope of widget/PROTOCOL.md and its checks, and the
 * appearance rules. esbuild inlines this module into each of the two bundles.
 */

export const NS = "flint";
export const VERSION = 1;

export const envelope = (type, id, payload = {}) => ({ ns: NS, v: VERSION, type, id, payload });

// Checked in this order (penpal's WindowMessenger): source, exact origin, then shape. A missing
// source never matches: a detached frame's contentWindow is null, as is some events' source.
export const isFrom = (event, source, origin) => {
  const message = event.data;
  return !!source && event.source === source && event.origin === origin &&
    message?.ns === NS && message.v === VERSION && typeof message.type === "string";
};

export const payloadOf = (message) => (message.payload && typeof message.payload === "object" ? message.payload : {});

// -- appearance: a short list of CSS custom properties, each value checked ---------------------------
const COLOR = /^(#[0-9a-f]{3,8}|(rgb|hsl)a?\(\s*[0-9.%,\s/]+\))$/i;
const LENGTH = /^\d{1,3}(\.\d{1,3})?(px|rem|em)$/;
const FONT = /^[a-z0-9 ,"'-]{1,120}$/i;

// A Map, not an object literal: a key such as "constructor" or "__proto__" must find no rule.
const APPEARANCE = new Map([
  ["colorPrimary", ["--brand", COLOR]],
  ["colorBackground", ["--bg", COLOR]],
  ["colorText", ["--text", COLOR]],
  ["colorDanger", ["--danger", COLOR]],
  ["borderRadius", ["--radius", LENGTH]],
  ["fontFamily", ["--font", FONT]],
]);

/** The appearance keys whose values pass their rule (trimmed), from `{...}` or `{variables: {...}}`;
 * `ignored(name)` hears of every other key. */
export const cleanAppearance = (input, ignored = () => {}) => {
  const clean = {};
  if (!input || typeof input !== "object") return clean;
  const variables = input.variables && typeof input.variables === "object" ? input.variables : input;
  for (const name of Object.keys(variables)) {
    const value = variables[name];
    const rule = APPEARANCE.get(name)?.[1];
    if (rule && typeof value === "string" && rule.test(value.trim())) clean[name] = value.trim();
    else ignored(name);
  }
  return clean;
};

/** {custom property: value} for an appearance, validated again: the frame trusts nothing it is
 * sent, and a value that passed can neither inject CSS nor load a resource. */
export const cssVariables = (input) => {
  const clean = cleanAppearance(input);
  const styles = {};
  for (const name in clean) styles[APPEARANCE.get(name)[0]] = clean[name];
  return styles;
};

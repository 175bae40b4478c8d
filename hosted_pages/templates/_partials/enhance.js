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
  form.addEventListener("submit", function (event) {
    if (form.dataset.sent) { event.preventDefault(); return; }  // a second click sends nothing
    form.dataset.sent = "1";
    pay.disabled = true;
    pay.setAttribute("aria-busy", "true");
  });
})();

// churnguard web app: small progressive enhancements, no dependencies.
// Buttons with data-confirm ask before submitting their form.
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var message = button && button.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

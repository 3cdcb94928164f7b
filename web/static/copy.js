// Copy buttons: <button class="copy" data-copy-target="ID"> copies the text of #ID.
(function () {
  "use strict";
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) { return; }
    var status = button.parentNode.querySelector(".copy-status");
    copy(source.textContent).then(function () {
      button.textContent = "Copied";
      if (status) { status.textContent = "Copied to the clipboard."; }
    }, function () {
      if (status) { status.textContent = "Couldn't copy; select the text and copy it by hand."; }
    });
  });
})();

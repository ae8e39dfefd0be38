// The login page: a browser that still has a session goes straight to the page asked for
// (an alert link from an email or a chat is a cross-site navigation, on which the
// SameSite=Strict cookie is not sent); otherwise the page asked for rides along with the
// login.
"use strict";
(async () => {
  const next = location.hash || "";
  document.getElementById("next").value = next;
  try {
    const res = await fetch("/ui/api/session", { credentials: "same-origin", cache: "no-store" });
    if (res.ok) location.replace("/ui/" + next);
  } catch (e) {
    // Not logged in, or vigil is not answering: the form stays.
  }
})();

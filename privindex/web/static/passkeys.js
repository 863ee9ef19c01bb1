// privindex: passkeys on the sign-in page, after privindex.js (whose helpers it uses). The
// button works wherever WebAuthn does; where the browser offers its passkey chooser in the
// username field (conditional mediation), that is started when the page loads.
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const button = document.getElementById("passkey-login");
  if (!button) return;
  let chooser = null;
  button.addEventListener("click", () => {
    if (chooser) chooser.abort();  // one request at a time: the button's replaces the chooser's
    signInWithKey(button);
  });
  if (!window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable ||
      !(await PublicKeyCredential.isConditionalMediationAvailable())) return;
  chooser = new AbortController();
  try {
    const options = await postJSON(button.dataset.options);
    const credential = await navigator.credentials.get(
      {publicKey: requestOptions(options), mediation: "conditional", signal: chooser.signal});
    const result = await postJSON(button.dataset.verify, {credential: credentialJSON(credential)});
    window.location.assign(result.redirect);
  } catch (error) {
    if (error.name !== "AbortError") showError(button.closest("section"), error.message);
  }
});

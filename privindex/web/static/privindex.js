// privindex: the only script. Security keys (WebAuthn) need it; everything else works without.
"use strict";

const b64uToBuf = (s) => {
  s = s.replace(/-/g, "+").replace(/_/g, "/");
  while (s.length % 4) s += "=";
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer;
};
const bufToB64u = (b) => btoa(String.fromCharCode(...new Uint8Array(b)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function creationOptions(o) {
  if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(o);
  return {...o, challenge: b64uToBuf(o.challenge), user: {...o.user, id: b64uToBuf(o.user.id)},
    excludeCredentials: (o.excludeCredentials || []).map((c) => ({...c, id: b64uToBuf(c.id)}))};
}

function requestOptions(o) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(o);
  return {...o, challenge: b64uToBuf(o.challenge),
    allowCredentials: (o.allowCredentials || []).map((c) => ({...c, id: b64uToBuf(c.id)}))};
}

function credentialJSON(c) {
  if (c.toJSON) return c.toJSON();
  const r = c.response;
  const out = {id: c.id, rawId: bufToB64u(c.rawId), type: c.type,
    authenticatorAttachment: c.authenticatorAttachment,
    clientExtensionResults: c.getClientExtensionResults(),
    response: {clientDataJSON: bufToB64u(r.clientDataJSON)}};
  if (r.attestationObject) {
    out.response.attestationObject = bufToB64u(r.attestationObject);
    out.response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    out.response.authenticatorData = bufToB64u(r.authenticatorData);
    out.response.signature = bufToB64u(r.signature);
    out.response.userHandle = r.userHandle ? bufToB64u(r.userHandle) : null;
  }
  return out;
}

async function postJSON(url, body) {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const response = await fetch(url, {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRFToken": token},
    body: JSON.stringify(body || {})});
  let data = {};
  try { data = await response.json(); } catch (e) { data = {error: response.statusText}; }
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function showError(scope, message) {
  const box = scope.querySelector(".js-error");
  box.textContent = message;
  box.hidden = false;
}

function needsSecureContext(scope) {
  if (window.PublicKeyCredential && navigator.credentials) return false;
  showError(scope, "This browser cannot use security keys on this page: it needs HTTPS or http://localhost.");
  return true;
}

async function signInWithKey(button) {
  const scope = button.closest("section");
  if (needsSecureContext(scope)) return;
  button.disabled = true;
  try {
    const options = await postJSON(button.dataset.options);
    const credential = await navigator.credentials.get({publicKey: requestOptions(options)});
    const result = await postJSON(button.dataset.verify, {credential: credentialJSON(credential)});
    window.location.assign(result.redirect);
  } catch (error) {
    showError(scope, error.message);
    button.disabled = false;
  }
}

async function enrolKey(form) {
  if (needsSecureContext(form)) return;
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const options = await postJSON(form.dataset.options);
    const credential = await navigator.credentials.create({publicKey: creationOptions(options)});
    const result = await postJSON(form.dataset.verify, {label: (form.elements.label || {}).value,
      replace: form.dataset.replace, credential: credentialJSON(credential)});
    if (result.codes && result.codes.length) {
      const panel = document.getElementById("recovery-codes-js");
      const list = panel.querySelector("ul");
      result.codes.forEach((code) => {
        const item = document.createElement("li");
        const text = document.createElement("code");
        text.textContent = code;
        item.appendChild(text);
        list.appendChild(item);
      });
      document.querySelectorAll("main > :not(#recovery-codes-js)").forEach((el) => { el.hidden = true; });
      panel.hidden = false;
      panel.querySelector("a").focus();
    } else {
      window.location.assign(result.redirect);
    }
  } catch (error) {  // a passkey form says what a key the browser refused lacks
    showError(form, (error instanceof DOMException && form.dataset.lacks) || error.message);
    button.disabled = false;
  }
}

function copyFrom(button) {
  const source = document.getElementById(button.dataset.copy);
  const text = source.value !== undefined ? source.value : source.textContent;
  navigator.clipboard.writeText(text).then(() => {
    button.textContent = "✓";
  }, () => {
    if (source.select) source.select();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const keyLogin = document.getElementById("key-login");
  if (keyLogin) keyLogin.addEventListener("click", () => signInWithKey(keyLogin));
  document.querySelectorAll("#key-enrol-form, form.passkey-enrol").forEach((form) =>
    form.addEventListener("submit", (event) => { event.preventDefault(); enrolKey(form); }));
  document.querySelectorAll("[data-copy]").forEach((button) =>
    button.addEventListener("click", () => copyFrom(button)));
});

// Copy buttons: a progressive enhancement for `<code data-copy="Copy">`; without script the
// text is still there to select.
document.addEventListener("DOMContentLoaded", () => {
  if (!navigator.clipboard) return;
  for (const code of document.querySelectorAll("code[data-copy]")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = code.dataset.copy;
    button.setAttribute("aria-label", code.dataset.copyLabel || code.dataset.copy);
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(code.textContent.trim());
      button.textContent = code.dataset.copied || code.dataset.copy;
    });
    code.after(button);
  }
});

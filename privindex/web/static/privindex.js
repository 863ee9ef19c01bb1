// privindex: the only script. Security keys (WebAuthn) need it; everything else works without
// (copy buttons, the theme toggle and the narrow-screen menu are enhancements).
// Loaded in <head> without defer, so the saved theme applies before the first paint.
"use strict";

const THEME_KEY = "privindex-theme";

function savedTheme() {
  try { return localStorage.getItem(THEME_KEY); } catch (e) { return null; }
}

function applyTheme(theme) {
  if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

document.documentElement.classList.add("js");
applyTheme(savedTheme());

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
  showError(scope, scope.dataset.insecure ||
    "This browser cannot use security keys on this page: it needs HTTPS or http://localhost.");
  return true;
}

// The browser's own errors (cancelled, refused, timed out: NotAllowedError and friends) are
// raw English; the page carries a translated sentence for them. The server's are translated.
function keyErrorMessage(scope, error) {
  if (error instanceof DOMException && scope.dataset.refused) return scope.dataset.refused;
  return error.message;
}

// Ask the browser for a key's answer to the options at button.dataset.options, and hand it
// to deliver; what fails is said in the button's section.
async function useKey(button, deliver) {
  const scope = button.closest("section");
  if (needsSecureContext(scope)) return;
  button.disabled = true;
  try {
    const options = await postJSON(button.dataset.options);
    const credential = await navigator.credentials.get({publicKey: requestOptions(options)});
    await deliver(credentialJSON(credential));
  } catch (error) {
    showError(scope, keyErrorMessage(scope, error));
    const others = scope.querySelector(".other-ways");
    if (others) others.hidden = false;
    button.disabled = false;
  }
}

function signInWithKey(button) {
  return useKey(button, async (credential) => {
    const result = await postJSON(button.dataset.verify, {credential});
    window.location.assign(result.redirect);
  });
}

// The re-check of a sensitive action with a passkey: its answer goes into the re-check
// form, which is sent as with a password (and so resumes the interrupted form the same way).
function confirmWithPasskey(button) {
  return useKey(button, (credential) => {
    const form = document.getElementById("reauth-form");
    form.elements.passkey.value = JSON.stringify(credential);
    form.submit();
  });
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
    showError(form, (error instanceof DOMException && form.dataset.lacks) || keyErrorMessage(form, error));
    button.disabled = false;
  }
}

// A copy button: `<button class="copy" data-copy="TEXT">` copies TEXT; an older
// `<button data-copy="ID">` (no class copy) copies the value or text of the element ID.
function copyText(button) {
  if (button.classList.contains("copy")) return {text: button.dataset.copy, source: null};
  const source = document.getElementById(button.dataset.copy);
  if (!source) return {text: button.dataset.copy, source: null};
  return {text: source.value !== undefined ? source.value : source.textContent.trim(), source};
}

function copyFrom(button) {
  const {text, source} = copyText(button);
  const done = () => {
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = button.dataset.copied || document.body.dataset.copied || "✓";  // "Copied", translated
    setTimeout(() => { button.textContent = button.dataset.label; }, 2000);
  };
  if (!navigator.clipboard) { if (source && source.select) source.select(); return; }
  navigator.clipboard.writeText(text).then(done, () => { if (source && source.select) source.select(); });
}

// The theme on screen: the toggle's saved choice, else the system's.
function isDark() {
  const chosen = document.documentElement.dataset.theme;
  return chosen ? chosen === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
}

function toggleTheme(button) {
  const next = isDark() ? "light" : "dark";
  applyTheme(next);
  try { localStorage.setItem(THEME_KEY, next); } catch (e) { /* private mode: this page only */ }
  labelThemeButton(button);
}

function labelThemeButton(button) {
  const dark = isDark();
  const label = dark ? button.dataset.light : button.dataset.dark;
  button.textContent = dark ? "\u2600" : "\u263E";  // sun, moon: the theme a click gives
  button.setAttribute("aria-label", label);
  button.title = label;
}

function wireMenu(button) {
  const header = button.closest("header");
  button.addEventListener("click", () => {
    const open = header.classList.toggle("open");
    button.setAttribute("aria-expanded", String(open));
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && header.classList.contains("open")) {
      header.classList.remove("open");
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const keyLogin = document.getElementById("key-login");
  if (keyLogin) keyLogin.addEventListener("click", () => signInWithKey(keyLogin));
  const passkeyConfirm = document.getElementById("passkey-confirm");
  if (passkeyConfirm) passkeyConfirm.addEventListener("click", () => confirmWithPasskey(passkeyConfirm));
  document.querySelectorAll("#key-enrol-form, form.passkey-enrol").forEach((form) =>
    form.addEventListener("submit", (event) => { event.preventDefault(); enrolKey(form); }));
  document.querySelectorAll("button[data-copy]").forEach((button) =>
    button.addEventListener("click", () => copyFrom(button)));
  const theme = document.querySelector(".theme-toggle");
  if (theme) {
    labelThemeButton(theme);
    theme.hidden = false;
    theme.addEventListener("click", () => toggleTheme(theme));
    // the system's theme can change while the page is open (evening mode): relabel
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => labelThemeButton(theme));
  }
  const menu = document.querySelector(".menu-toggle");
  if (menu) wireMenu(menu);
  document.querySelectorAll("nav.tabs").forEach(showCurrentTab);
});

// A tab row that scrolls sideways (narrow screens) starts with the current tab in view.
function showCurrentTab(nav) {
  const current = nav.querySelector("[aria-current=page]");
  if (!current) return;
  const overflow = current.getBoundingClientRect().right - nav.getBoundingClientRect().right;
  if (overflow > 0) nav.scrollLeft += overflow;
}

// Copy buttons: a progressive enhancement for `<code data-copy="Copy">`; without script the
// text is still there to select.
document.addEventListener("DOMContentLoaded", () => {
  if (!navigator.clipboard) return;
  for (const code of document.querySelectorAll("code[data-copy]")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy secondary";
    button.textContent = code.dataset.copy;
    button.setAttribute("aria-label", code.dataset.copyLabel || code.dataset.copy);
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(code.textContent.trim());
      button.textContent = code.dataset.copied || code.dataset.copy;
    });
    code.after(button);
  }
});

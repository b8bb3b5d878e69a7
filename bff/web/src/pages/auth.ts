/** Sign up and sign in: field errors next to their fields, anything else above the form. */
import { ApiError, api, loadSession, read, type User } from "../api.ts";
import { h } from "../dom.ts";
import { flash, navigate, type PageContext, safeNext, setTitle } from "../router.ts";
import { signedIn } from "../session.ts";
import { state } from "../state.ts";
import { type Field, type FormError, field, formError, showFormError } from "../ui.ts";
import { completePendingAdd, pendingAddName } from "./product.ts";

type Mode = "signup" | "signin";

const submitText = (mode: Mode) => (mode === "signup" ? "Create account" : "Sign in");

/** The form's fields: name (signing up only), email, password. */
function authFields(mode: Mode): Record<string, Field> {
  const fields: Record<string, Field> = {};
  if (mode === "signup") {
    fields.displayName = field("displayName", "Your name", h("input", { type: "text", autocomplete: "name", required: true, maxlength: 80 }));
  }
  fields.email = field(
    "email",
    "Email",
    h("input", { type: "email", autocomplete: "email", required: true, maxlength: 254, spellcheck: "false", autocapitalize: "off" }),
  );
  fields.password = field(
    "password",
    "Password",
    h("input", { type: "password", autocomplete: mode === "signup" ? "new-password" : "current-password", required: true, maxlength: 128 }),
    mode === "signup" ? "10 to 128 characters. A passphrase is easiest to remember." : undefined,
  );
  return fields;
}

/**
 * Signs up or in with the form's values; answers the user. Signing up answers alike whether the
 * email was free or not (so that it tells nobody who has an account), so it is followed by
 * signing in with the same email and password.
 */
async function submitAuth(mode: Mode, values: Record<string, string>): Promise<User> {
  const credentials = { email: values.email!, password: values.password! };
  if (mode === "signup") await read(api.auth.signup.$post({ json: { ...credentials, displayName: values.displayName! } }));
  const { user } = await read(api.auth.signin.$post({ json: credentials })).catch((err: unknown) => {
    if (mode === "signup" && err instanceof ApiError && err.status === 401) {
      throw new ApiError(401, err.code, "We could not sign you in with this email and password. If you already have an account, sign in with its password.");
    }
    throw err;
  });
  // The session (and so the CSRF token) may be new after signing in.
  await loadSession().catch(() => undefined);
  return user;
}

/** Sends the form when every field is filled in; signed in, finishes a pending add-to-cart and goes on to `next`. */
function onSubmit(
  mode: Mode,
  form: HTMLFormElement,
  parts: { fields: Record<string, Field>; general: FormError; submit: HTMLButtonElement },
  next: string,
): void {
  const { fields, general, submit } = parts;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, k === "password" ? f.input.value : f.input.value.trim()]));
    // Only "is it filled in" here; the BFF decides what is valid and says so per field.
    const missing: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) if (!v) missing[k] = "Please fill this in.";
    if (Object.keys(missing).length) {
      for (const [k, f] of Object.entries(fields)) f.setError(missing[k]);
      general.set(undefined);
      fields[Object.keys(missing)[0]!]!.input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = mode === "signup" ? "Creating account…" : "Signing in…";
    try {
      const user = await submitAuth(mode, values);
      signedIn(user);
      const added = await completePendingAdd();
      flash(added ?? (mode === "signup" ? `Welcome to Bazaar, ${user.displayName}!` : `Welcome back, ${user.displayName}.`));
      navigate(next, { replace: true });
    } catch (err) {
      showFormError(err, fields, general);
      submit.disabled = false;
      submit.textContent = submitText(mode);
    }
  });
}

function authPage(mode: Mode) {
  return async ({ root, query }: PageContext): Promise<void> => {
    const next = safeNext(query.get("next"));
    setTitle(mode === "signup" ? "Sign up" : "Sign in");
    if (state.user) {
      root.append(
        h(
          "div",
          { class: "notice" },
          h("p", {}, `You are signed in as ${state.user.displayName || state.user.email}.`),
          h("a", { href: next, class: "button" }, "Continue"),
        ),
      );
      return;
    }
    const other = new URLSearchParams(query.get("next") ? { next } : {});
    const fields = authFields(mode);
    const general = formError();
    const submit = h("button", { type: "submit", class: "button wide", "data-testid": `${mode}-submit` }, submitText(mode));
    const pending = pendingAddName();
    const form = h(
      "form",
      { class: "form auth-form", novalidate: true, "data-testid": `${mode}-form`, "aria-labelledby": "auth-title" },
      h("h1", { id: "auth-title" }, mode === "signup" ? "Create your account" : "Sign in"),
      pending
        ? h("p", { class: "form-note" }, `Sign in or create an account to add ${pending} to your cart.`)
        : query.get("next") && mode === "signin" && h("p", { class: "form-note" }, "Please sign in to continue."),
      general.el,
      Object.values(fields).map((f) => f.wrap),
      submit,
      mode === "signup"
        ? h(
            "p",
            { class: "form-alt" },
            "Already have an account? ",
            h("a", { href: `/signin${other.size ? `?${other}` : ""}`, "data-testid": "to-signin" }, "Sign in"),
          )
        : h(
            "p",
            { class: "form-alt" },
            "New to Bazaar? ",
            h("a", { href: `/signup${other.size ? `?${other}` : ""}`, "data-testid": "to-signup" }, "Create an account"),
          ),
    );
    onSubmit(mode, form, { fields, general, submit }, next);
    root.append(h("div", { class: "narrow" }, form));
    fields[mode === "signup" ? "displayName" : "email"]!.input.focus({ preventScroll: true });
  };
}

export const signUpPage = authPage("signup");
export const signInPage = authPage("signin");

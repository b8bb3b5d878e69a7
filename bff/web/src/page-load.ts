/**
 * How a page, or a part of one, shows what it reads from the API: load → (the person may
 * navigate away) → error → render, the same way everywhere.
 */
import { h } from "./dom.ts";
import { reload } from "./router.ts";
import { errorBox, loading } from "./ui.ts";

/** Puts nodes on the page where a load's outcome goes. */
export type Place = (...nodes: Node[]) => void;

/** The outcome takes the place of `placeholder` (e.g. its spinner). */
export const instead =
  (placeholder: ChildNode): Place =>
  (...nodes) =>
    placeholder.replaceWith(...nodes);

/** The outcome fills `container`, replacing what it held. */
export const inside =
  (container: ParentNode): Place =>
  (...nodes) =>
    container.replaceChildren(...nodes);

/** What {@link load} does. */
export interface Load<T> {
  /** Reads the data; it rejects with an AbortError when the person navigates away (pass it the page's signal). */
  fetch: () => Promise<T>;
  /** Where a failure goes; `render` gets it too. */
  place: Place;
  /** Draws the data, putting it on the page with `place` (or elsewhere). */
  render: (data: T, place: Place) => void;
  /** The page's own answer to a failure it expects (e.g. "not found"); undefined for the usual error box. */
  explain?: (err: unknown) => Node | undefined;
  /** What the error box's "Try again" does (default: draw the page again). */
  retry?: () => void;
}

/**
 * Loads and draws: when `fetch` answers, `render` draws the data; when it was aborted (the
 * person navigated away), nothing is drawn; when it fails, the page's explanation or the error
 * with "Try again" goes to `place`.
 */
export async function load<T>({ fetch, place, render, explain, retry = reload }: Load<T>): Promise<void> {
  let data: T;
  try {
    data = await fetch();
  } catch (err) {
    if ((err as Error).name === "AbortError") return;
    place(explain?.(err) ?? errorBox(err, retry));
    return;
  }
  render(data, place);
}

/** What {@link pager} does. */
export interface Pager<P> {
  /** Below the list: the spinner while a further page loads, a failure, and the "Show more" button. */
  more: HTMLElement;
  /** Reads one page (the first when `pageToken` is undefined). */
  fetch: (pageToken: string | undefined) => Promise<P>;
  /** Draws a page into the list (`more` is empty by then). */
  render: (page: P, pageToken: string | undefined) => void;
  /** Whether the list ended with the page just drawn, whatever its token (e.g. it shows its empty state). */
  ended?: () => boolean;
  /** Called before a failure is drawn. */
  failed?: (pageToken: string | undefined) => void;
  /** Where a failure goes (default: `more`). */
  failurePlace?: (pageToken: string | undefined) => Place;
  /** Told when a page starts and stops loading (e.g. for aria-busy). */
  busy?: (busy: boolean) => void;
  /** Whether `more` shows a spinner while a further page loads (default true). */
  spinner?: boolean;
}

/** A list read a page at a time: see {@link pager}. */
export interface PagedList<P> {
  /** Loads and draws a page (the first without a token). */
  load(pageToken?: string): Promise<void>;
  /** Draws a page read some other way (e.g. a fresh first page), as if loaded. */
  show(page: P, pageToken?: string): void;
}

/**
 * A list read a page at a time with {@link load}: after each page, a "Show more" button in
 * `more` loads the next; a failure shows with "Try again" for that page.
 */
export function pager<P extends { nextPageToken?: string | null }>(options: Pager<P>): PagedList<P> {
  const { more, busy, spinner = true } = options;
  const show = (page: P, pageToken?: string) => {
    more.replaceChildren();
    options.render(page, pageToken);
    if (options.ended?.()) return;
    const next = page.nextPageToken;
    if (next) more.append(showMore(() => void loadPage(next)));
  };
  const loadPage = async (pageToken?: string): Promise<void> => {
    if (!spinner) more.replaceChildren();
    else if (pageToken) more.replaceChildren(loading());
    busy?.(true);
    try {
      await load({
        fetch: () => options.fetch(pageToken),
        place: (...nodes) => {
          options.failed?.(pageToken);
          (options.failurePlace?.(pageToken) ?? inside(more))(...nodes);
        },
        retry: () => void loadPage(pageToken),
        render: (page) => show(page, pageToken),
      });
    } finally {
      busy?.(false);
    }
  };
  return { load: loadPage, show };
}

/** The "Show more" button of a paged list. */
export function showMore(onclick: () => void): HTMLElement {
  return h("button", { type: "button", class: "button", "data-testid": "show-more", onclick }, "Show more");
}

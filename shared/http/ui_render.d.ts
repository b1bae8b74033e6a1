// Types of shared/http/ui_render.gen.js, the bundle of ui/render.tsx (scripts/build_ui.ts): the
// programs see these instead of the UI's sources, whose DOM types do not mix with Deno's.

/** The API paths (GET) whose answers the peer's page carries and is first rendered from. */
export const PEER_FIRST_PATHS: readonly string[];
/** The HTML of the peer page's first view, from the answers of PEER_FIRST_PATHS by path. */
export function renderPeerApp(first: Readonly<Record<string, unknown>>): string;
/** The API paths (GET) whose answers the dashboard carries and is first rendered from. */
export const SERVER_FIRST_PATHS: readonly string[];
/** The HTML of the dashboard's first view, from the answers of SERVER_FIRST_PATHS by path. */
export function renderServerApp(first: Readonly<Record<string, unknown>>): string;
/** The id of the page's element holding the embedded answers (a JSON data block). */
export const FIRST_ANSWERS_ID: string;

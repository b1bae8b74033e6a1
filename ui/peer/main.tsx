// The peer page's script (bundled by scripts/build_ui.ts): hydrates the view the peer rendered.
import { start } from "../common/start.tsx";
import { App } from "./app.tsx";

start(<App />);

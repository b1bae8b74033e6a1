// The dashboard's script (bundled by scripts/build_ui.ts): hydrates the view the server rendered.
import { start } from "../common/start.tsx";
import { App } from "./app.tsx";

start(<App />);

import assert from "node:assert/strict";
import { explainNotCapable } from "../../peer/permissions.ts";

Deno.test("explainNotCapable() names the flag and the commands that grant the access", () => {
  const text = explainNotCapable(
    'Requires write access to "/srv/files", run again with the --allow-write flag',
    "/srv/files",
  );
  assert.match(text, /^Cannot start: no write access to "\/srv\/files" \(Deno says: Requires/);
  assert.match(text, /`deno task peer --repo \/srv\/files`/);
  assert.match(text, /`make peer REPO=\/srv\/files`/);
  assert.match(text, /add --allow-write=\/srv\/files to deno run$/);
  assert.match(
    explainNotCapable(
      'Requires sys access to "networkInterfaces", run again with the --allow-sys flag',
      "r",
    ),
    /add --allow-sys=hostname,networkInterfaces to deno run$/,
  );
  assert.match(
    explainNotCapable(
      'Requires net access to "0.0.0.0:0", run again with the --allow-net flag',
      "r",
    ),
    /no net access to "0\.0\.0\.0:0".*add --allow-net to deno run$/,
  );
});

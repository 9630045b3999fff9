// Preloaded by bun test (bunfig.toml): every process a test starts through tests/helpers.ts is killed by pid
// when the test ends, pass or fail, and a test that leaves one running fails.
import { afterEach } from "bun:test";
import { killTracked } from "./helpers.ts";

afterEach(() => {
  const survivors = killTracked();
  if (survivors.length > 0 && !process.env.FDBROKER_ALLOW_LEFTOVERS)
    throw new Error(`test left processes running (killed now): ${survivors.join(", ")}`);
});

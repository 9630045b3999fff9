// The package as npm would ship it (`npm pack`): its `exports` and `files` must let a Bun program import the
// library by name, with nothing from this checkout but what the tarball holds.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUN, ROOT, run, tempDir } from "../helpers.ts";

const dir = tempDir("fdbroker-pack-");
afterAll(() => dir.cleanup());

test("a Bun program imports the packed library as `fdbroker` and passes an fd with it", async () => {
  const pack = await run(["npm", "pack", "--silent", "--pack-destination", dir.path], { cwd: ROOT });
  expect(pack.code).toBe(0);
  const tarball = join(dir.path, pack.stdout.trim().split("\n").pop()!);
  const app = join(dir.path, "app");
  mkdirSync(join(app, "node_modules/fdbroker"), { recursive: true });
  const untar = await run(["tar", "-xzf", tarball, "-C", join(app, "node_modules/fdbroker"), "--strip-components=1"]);
  expect(untar.code).toBe(0);
  // package.json's `man` names the page `npm pack` generated (prepack): npm installs it with the package.
  expect(readFileSync(join(app, "node_modules/fdbroker/dist/fdbroker.1"), "utf8")).toStartWith(".TH FDBROKER 1");
  // The library half needs no dependency (commander and picocolors are for the CLI), so none is installed here.
  writeFileSync(join(app, "main.ts"), `
    import { closeFd, describeFd, recvFds, sendFds, socketPair } from "fdbroker";
    import { openSync } from "node:fs";
    const [a, b] = socketPair();
    const file = openSync(${JSON.stringify(tarball)}, "r");
    sendFds(a, [file], "packed");
    using msg = recvFds(b);
    console.log(new TextDecoder().decode(msg.data), describeFd(msg.fds[0]!).kind);
    for (const fd of [a, b, file]) closeFd(fd);
  `);
  const r = await run([BUN, "main.ts"], { cwd: app });
  expect(r.stderr).toBe("");
  expect(r.stdout).toBe("packed file\n");
  expect(r.code).toBe(0);
}, 120_000);

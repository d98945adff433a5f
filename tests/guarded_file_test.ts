/**
 * The guarded open: what a worker may read, whatever the data directory holds.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./assert.ts";
import {
  FileSwappedError,
  FileTooLargeError,
  NotRegularFileError,
  OutsideRootsError,
  ReadScope,
} from "../common/io/guarded_file.ts";

async function tree() {
  const dir = await Deno.makeTempDir();
  const root = `${dir}/root`;
  const outside = `${dir}/outside`;
  await Deno.mkdir(`${root}/project`, { recursive: true });
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${outside}/secret.txt`, "outside secret\n");
  await Deno.writeTextFile(`${root}/project/inside.jsonl`, "inside\n");
  return { dir, root, outside, scope: new ReadScope([root]) };
}

function run(cmd: string, ...args: string[]) {
  const out = new Deno.Command(cmd, { args }).outputSync();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

Deno.test("guarded open: only regular files inside the roots", async (t) => {
  await t.step("a regular file inside is read", async () => {
    const { root, scope } = await tree();
    await using file = await scope.open(`${root}/project/inside.jsonl`);
    assertEquals(new TextDecoder().decode(await file.read(0, 100)), "inside\n");
    assertEquals(file.stat.size, 7);
  });

  await t.step("a link to a file outside is refused, naming both paths", async () => {
    const { root, outside, scope } = await tree();
    await Deno.symlink(`${outside}/secret.txt`, `${root}/project/s.jsonl`);
    const error = await assertRejects(() => scope.open(`${root}/project/s.jsonl`));
    assert(error instanceof OutsideRootsError, `${error}`);
    assertStringIncludes(error.message, `${root}/project/s.jsonl`);
    assertStringIncludes(error.message, `${outside}/secret.txt`);
  });

  await t.step("a path through a linked folder outside is refused", async () => {
    const { root, outside, scope } = await tree();
    await Deno.symlink(outside, `${root}/linked`);
    const error = await assertRejects(() => scope.open(`${root}/linked/secret.txt`));
    assert(error instanceof OutsideRootsError, `${error}`);
  });

  await t.step("a link to a file inside is followed", async () => {
    const { root, scope } = await tree();
    await Deno.symlink(`${root}/project/inside.jsonl`, `${root}/project/alias.jsonl`);
    await using file = await scope.open(`${root}/project/alias.jsonl`);
    assertEquals(file.stat.size, 7);
  });

  await t.step("a root that is itself a link (a data folder on another disk) works", async () => {
    const { dir, root } = await tree();
    await Deno.symlink(root, `${dir}/alias-root`);
    const scope = new ReadScope([`${dir}/alias-root`]);
    await using file = await scope.open(`${dir}/alias-root/project/inside.jsonl`);
    assertEquals(file.stat.size, 7);
  });

  await t.step("a FIFO is refused at once instead of blocking", async () => {
    const { root, scope } = await tree();
    run("mkfifo", `${root}/project/pipe.jsonl`);
    const started = performance.now();
    const error = await assertRejects(() => scope.open(`${root}/project/pipe.jsonl`));
    assert(error instanceof NotRegularFileError, `${error}`);
    assertStringIncludes(error.message, "a FIFO");
    assert(performance.now() - started < 2000, "the open did not wait for a writer");
  });

  await t.step("a device, inside or linked to, is refused", async () => {
    const { root, scope } = await tree();
    await Deno.symlink("/dev/zero", `${root}/project/zero.jsonl`);
    assert(
      (await assertRejects(() => scope.open(`${root}/project/zero.jsonl`))) instanceof
        OutsideRootsError,
    );
    const node = `${root}/project/node.jsonl`;
    try {
      run("mknod", node, "c", "1", "5");
    } catch {
      console.log("skipping the device node inside the root: mknod is not permitted here");
      return;
    }
    const error = await assertRejects(() => scope.open(node));
    assert(error instanceof NotRegularFileError, `${error}`);
    assertStringIncludes(error.message, "a device");
  });

  await t.step("a directory is refused", async () => {
    const { root, scope } = await tree();
    const error = await assertRejects(() => scope.open(`${root}/project`));
    assert(error instanceof NotRegularFileError, `${error}`);
  });

  await t.step("a side file over its limit is refused; the limit is named", async () => {
    const { root, scope } = await tree();
    await Deno.writeFile(`${root}/project/big.meta.json`, new Uint8Array(2 * 1024 * 1024));
    const error = await assertRejects(() => scope.readFile(`${root}/project/big.meta.json`));
    assert(error instanceof FileTooLargeError, `${error}`);
    assertStringIncludes(error.message, "1048576");
  });

  await t.step(
    "a file that grows after it was opened is read whole, within the limit",
    async () => {
      const { root, scope } = await tree();
      const path = `${root}/project/growing.zst`;
      await Deno.writeTextFile(path, "0123456789");
      await using file = await scope.open(path);
      await Deno.writeTextFile(path, "abcdef", { append: true });
      assertEquals(new TextDecoder().decode(await file.readAll(100)), "0123456789abcdef");
      // The buffer is sized by the file, not by the limit (a terabyte could not be allocated).
      assertEquals((await file.readAll(2 ** 40)).length, 16);
      const error = await assertRejects(() => file.readAll(12, " (the limit)"));
      assert(error instanceof FileTooLargeError, `${error}`);
      assertStringIncludes(error.message, "is more than the limit of 12 (the limit)");
    },
  );

  await t.step("a folder swapped for a link between resolving and opening is caught", async () => {
    // The race made deterministic: resolve, swap the folder for a link outside, open.
    const { root, outside, scope } = await tree();
    await Deno.mkdir(`${root}/swap`);
    await Deno.writeTextFile(`${root}/swap/secret.txt`, "decoy\n");
    const original = Deno.realPathSync;
    let swapped = false;
    Deno.realPathSync = (path: string | URL) => {
      const real = original(path);
      if (!swapped && String(path).endsWith("/swap/secret.txt")) {
        swapped = true;
        Deno.renameSync(`${root}/swap`, `${root}/swap.away`);
        Deno.symlinkSync(outside, `${root}/swap`);
      }
      return real;
    };
    try {
      const error = await assertRejects(() => scope.open(`${root}/swap/secret.txt`));
      assert(error instanceof FileSwappedError, `${error}`);
      assert(swapped, "the swap happened between resolving and opening");
    } finally {
      Deno.realPathSync = original;
    }
  });

  await t.step("a file outside every root, named directly, is refused", async () => {
    const { outside, scope } = await tree();
    const error = await assertRejects(() => scope.open(`${outside}/secret.txt`));
    assert(error instanceof OutsideRootsError, `${error}`);
  });

  await t.step("a single-file root admits that file only", async () => {
    const { dir } = await tree();
    await Deno.writeTextFile(`${dir}/projects.json`, "{}");
    await Deno.writeTextFile(`${dir}/oauth_creds.json`, "{}");
    const scope = new ReadScope([`${dir}/projects.json`]);
    assertEquals(await scope.readTextFile(`${dir}/projects.json`), "{}");
    const error = await assertRejects(() => scope.open(`${dir}/oauth_creds.json`));
    assert(error instanceof OutsideRootsError, `${error}`);
  });
});

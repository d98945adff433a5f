/** The parser contract's helpers: a document's header fields are set as the input names them. */
import { setHeaderField } from "../common/source.ts";
import { assertEquals } from "./assert.ts";

Deno.test("setHeaderField: a root field named __proto__ is a field, not the prototype", () => {
  const header: Record<string, unknown> = {};
  setHeaderField(header, "sessionId", "s1");
  setHeaderField(header, "__proto__", { projectHash: "not mine" });
  assertEquals(Object.getPrototypeOf(header), Object.prototype);
  assertEquals(header.projectHash, undefined);
  assertEquals(Object.keys(header), ["sessionId", "__proto__"]);
});

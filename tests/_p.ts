import { parseClaudeCode } from "../parsers/claude_code.ts";
const dir = "../shared/fixtures/claude_code";
for (const f of ["vibecodingtracker_v1.0.95_two-sessions_tools_thinking.jsonl","ccviewer_fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl","agentsessions_stage0_small_schema-catalog.jsonl","claudecodelog_dag_compact_after_rewind.jsonl"]) {
  const bytes = Deno.readFileSync(`${dir}/${f}`);
  const out = parseClaudeCode({ bytes, firstLine: 1, carry: undefined, file: { path: f, hint: { kind: "session", sessionId: f.match(/[0-9a-f-]{36}/)?.[0] ?? "" }, host: "h" } });
  const c = out.conversations[0];
  console.log(f, out.messages, out.metadata, out.skipped, out.issues.slice(0,3), c?.title, c?.metadata, c?.messages.slice(-1)[0]?.round_index);
}

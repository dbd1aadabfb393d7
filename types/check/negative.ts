// Mistakes the generated types must catch: make test compiles this file and asserts that each
// line marked `// error: TSxxxx` fails with that code, and that nothing else fails.
import { createClient } from "@supabase/supabase-js"
import type { Database, TablesInsert } from "../database.types"

const supabase = createClient<Database>("https://project.supabase.co", "anon-key")
declare const embedding: number[]
declare const id: string

export async function mistakes(): Promise<void> {
  // the embedding as a string (what a `vector` parameter used to demand)
  await supabase.rpc("search_embeddings", { query_embedding: JSON.stringify(embedding) }) // error: TS2322
  // the required embedding left out
  await supabase.rpc("search_embeddings", { match_count: 5 }) // error: TS2345
  // a worker-only RPC is not part of the browser's API
  await supabase.rpc("complete_agent_execution", { execution_id: id }) // error: TS2345
  await supabase.rpc("report_investigation_progress", { investigation_id: id, progress: 0.5 }) // error: TS2345
  // a misspelt status
  await supabase.from("agent_executions").update({ status: "runing" }).eq("id", id) // error: TS2820
  const doc: TablesInsert<"documents"> = { collection_id: id, name: "x", status: "done" } // error: TS2322
  // a wrong role
  await supabase.from("users").update({ role: "owner" }).eq("id", id) // error: TS2322
  // wrong argument types
  await supabase.rpc("most_used_documents", { match_count: "10" }) // error: TS2322
  await supabase.rpc("create_investigation", { query: "q" }) // error: TS2345
  // one-sided hybrid matches have no text position: it may be null
  const { data } = await supabase.rpc("hybrid_search", { query_text: "q", query_embedding: embedding })
  const position: number = data![0].text_position // error: TS2322
  void [doc, position]
}

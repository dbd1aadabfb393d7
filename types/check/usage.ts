// Every call a frontend makes, type-checked against the generated types (make test runs
// `tsc --noEmit` over this file: it must compile). Nothing here runs; it is the contract.
import { createClient } from "@supabase/supabase-js"
import type { Database, Enums, Tables, TablesInsert, TablesUpdate } from "../database.types"

const supabase = createClient<Database>("https://project.supabase.co", "anon-key")
declare const embedding: number[] // what an embeddings API returns
declare const id: string

type HybridRow = Database["public"]["CompositeTypes"]["hybrid_search_match"]

export async function search(): Promise<void> {
  const { data, error } = await supabase.rpc("search_embeddings", {
    query_embedding: embedding,
    match_count: 10,
    collection_ids: [id],
    metadata_filter: { lang: "pt" },
    min_similarity: 0.2,
  })
  if (error) throw new Error(`${error.code}: ${error.message}`)
  for (const row of data) {
    const similarity: number = row.similarity
    const content: string = row.content
    const chunk: number = row.chunk_index
    void [similarity, content, chunk, row.document_id, row.collection_id, row.knowledge_base_id]
  }
  await supabase.rpc("search_embeddings", {
    query_embedding: embedding,
    usage_agent_id: id,
    usage_execution_id: id,
    knowledge_base_ids: [id],
  })
}

export async function hybrid(): Promise<void> {
  const { data, error } = await supabase.rpc("hybrid_search", {
    query_text: "prazo do contrato",
    query_embedding: embedding,
    match_count: 10,
    full_text_weight: 1,
    semantic_weight: 2,
    rrf_k: 50,
  })
  if (error) throw error
  const rows: HybridRow[] = data
  for (const row of rows) {
    const textPosition: number | null = row.text_position
    const semanticPosition: number | null = row.semantic_position
    const rank: number | null = row.text_rank
    const score: number = row.score ?? 0
    void [textPosition, semanticPosition, rank, score]
  }
}

export async function usage(): Promise<void> {
  const recorded = await supabase.rpc("record_chunk_usage", {
    agent_id: id,
    chunk_ids: [id, id],
    execution_id: id,
  })
  const count: number | null = recorded.data
  const { data: top } = await supabase.rpc("most_used_documents", { match_count: 5, agent_id: id })
  const uses: number | undefined = top?.[0]?.usage_count
  await supabase.rpc("most_used_documents")
  void [count, uses]
}

export async function executions(): Promise<void> {
  const { data: started, error } = await supabase.rpc("start_agent_execution", {
    agent_id: id,
    input: { question: "resuma o contrato" },
  })
  if (error) throw error
  const status: Enums<"agent_execution_status"> = started.status
  const { data: cancelled } = await supabase.rpc("cancel_agent_execution", { execution_id: started.id })
  const done: "cancelled" | "pending" | "running" | "completed" | "failed" | undefined =
    cancelled?.status
  const { data: running } = await supabase
    .from("agent_executions")
    .select("id, status, tokens_used, started_at")
    .eq("status", "running")
    .order("created_at", { ascending: false })
  const tokens: number | undefined = running?.[0]?.tokens_used
  // cancelling is also a PATCH the update policy allows (status only)
  const patch: TablesUpdate<"agent_executions"> = { status: "cancelled" }
  await supabase.from("agent_executions").update(patch).eq("id", id)
  const { data: months } = await supabase.from("client_monthly_token_usage").select("*")
  const { data: perAgent } = await supabase
    .from("agent_monthly_token_usage")
    .select("agent_id, month, tokens_used")
  void [status, done, tokens, months, perAgent]
}

export async function investigations(): Promise<void> {
  const { data: created, error } = await supabase.rpc("create_investigation", {
    query: "pagamentos duplicados",
    data_source: "erp",
    filters: { year: 2026 },
    anomaly_types: ["duplicate"],
  })
  if (error) throw error
  const channel = supabase
    .channel(`investigation:${created.id}`)
    .on<Tables<"investigations">>(
      "postgres_changes",
      { event: "UPDATE", schema: "public", table: "investigations", filter: `id=eq.${created.id}` },
      (payload) => {
        const row = payload.new as Tables<"investigations">
        const progress: number = row.progress
        const state: Enums<"investigation_status"> = row.status
        const failure: string | null = row.error
        void [progress, state, failure]
      },
    )
    .subscribe()
  await supabase.rpc("cancel_investigation", { investigation_id: created.id })
  await supabase.from("investigations").update({ session_id: "s1" }).eq("id", created.id)
  await supabase.from("investigations").select("*").in("status", ["pending", "processing"])
  await supabase.from("investigations").delete().eq("id", created.id)
  await supabase.removeChannel(channel)
}

export async function knowledge(): Promise<void> {
  const kb: TablesInsert<"knowledge_bases"> = { name: "Contratos" }
  const { data: base } = await supabase.from("knowledge_bases").insert(kb).select().single()
  const collection: TablesInsert<"knowledge_collections"> = {
    knowledge_base_id: base!.id,
    name: "2026",
  }
  const { data: coll } = await supabase.from("knowledge_collections").insert(collection).select().single()
  const doc: TablesInsert<"documents"> = {
    collection_id: coll!.id,
    name: "Contrato",
    source_type: "text",
    status: "pending",
  }
  const { data: document } = await supabase.from("documents").insert(doc).select().single()
  const docStatus: Enums<"document_status"> = document!.status
  // text_search_config is filled by a trigger and fts is generated: neither is needed
  const chunk: TablesInsert<"document_chunks"> = {
    document_id: document!.id,
    content: "O prazo do contrato é de 12 meses.",
    chunk_index: 0,
  }
  await supabase.from("document_chunks").insert(chunk)
  await supabase.from("documents").update({ status: "ready" }).eq("id", document!.id)
  await supabase.from("document_versions").select("version_number, change_type").eq("document_id", id)
  await supabase.from("document_usage_stats").select("chunk_id, usage_count")
  await supabase.from("embedding_cache").select("model, content_hash")
  void docStatus
}

export async function tenant(): Promise<void> {
  const { data: me } = await supabase.from("users").select("id, role, client_id").single()
  const role: Enums<"user_role"> | undefined = me?.role
  await supabase.from("users").update({ role: "member" }).eq("id", id)
  const { data: client } = await supabase.from("clients").select("id, name, status, settings").single()
  const clientStatus: "active" | "suspended" | "inactive" | undefined = client?.status
  await supabase.from("clients").update({ name: "Acme", settings: { monthly_token_limit: 1000 } }).eq("id", id)
  const { data: agents } = await supabase.from("agents").select("id, name, status").eq("status", "active")
  const agent: TablesInsert<"agents"> = { name: "Auditor", status: "inactive" }
  await supabase.from("agents").insert(agent)
  const { data: creds } = await supabase.from("api_credentials_metadata").select("*")
  const kind: Enums<"credential_type"> | null | undefined = creds?.[0]?.credential_type
  await supabase.from("api_credentials").update({ service_name: "openai" }).eq("id", id)
  void [role, clientStatus, agents, kind]
}

export type Json =
  | string
  | number
  | boolean
  | null
  | { [key: string]: Json | undefined }
  | Json[]

export type Database = {
  public: {
    Tables: {
      agent_executions: {
        Row: {
          agent_id: string
          client_id: string
          completed_at: string | null
          created_at: string
          error: string | null
          id: string
          input: NonNullable<Json>
          output: Json | null
          started_at: string | null
          status: Database["public"]["Enums"]["agent_execution_status"]
          tokens_used: number
          user_id: string | null
        }
        Insert: {
          agent_id: string
          client_id?: string
          completed_at?: string | null
          created_at?: string
          error?: string | null
          id?: string
          input?: NonNullable<Json>
          output?: Json | null
          started_at?: string | null
          status?: Database["public"]["Enums"]["agent_execution_status"]
          tokens_used?: number
          user_id?: string | null
        }
        Update: {
          agent_id?: string
          client_id?: string
          completed_at?: string | null
          created_at?: string
          error?: string | null
          id?: string
          input?: NonNullable<Json>
          output?: Json | null
          started_at?: string | null
          status?: Database["public"]["Enums"]["agent_execution_status"]
          tokens_used?: number
          user_id?: string | null
        }
        Relationships: [
          {
            foreignKeyName: "agent_executions_agent_fk"
            columns: ["client_id", "agent_id"]
            referencedRelation: "agents"
            referencedColumns: ["client_id", "id"]
          },
          {
            foreignKeyName: "agent_executions_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "agent_executions_user_fk"
            columns: ["client_id", "user_id"]
            referencedRelation: "users"
            referencedColumns: ["client_id", "id"]
          },
        ]
      }
      agents: {
        Row: {
          client_id: string
          configuration: NonNullable<Json>
          created_at: string
          description: string | null
          id: string
          name: string
          status: Database["public"]["Enums"]["agent_status"]
          updated_at: string
        }
        Insert: {
          client_id?: string
          configuration?: NonNullable<Json>
          created_at?: string
          description?: string | null
          id?: string
          name: string
          status?: Database["public"]["Enums"]["agent_status"]
          updated_at?: string
        }
        Update: {
          client_id?: string
          configuration?: NonNullable<Json>
          created_at?: string
          description?: string | null
          id?: string
          name?: string
          status?: Database["public"]["Enums"]["agent_status"]
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "agents_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
        ]
      }
      api_credentials: {
        Row: {
          client_id: string
          created_at: string
          credential_type: Database["public"]["Enums"]["credential_type"]
          encrypted_value: string
          id: string
          last_used_at: string | null
          service_name: string
          updated_at: string
        }
        Insert: {
          client_id?: string
          created_at?: string
          credential_type?: Database["public"]["Enums"]["credential_type"]
          encrypted_value: string
          id?: string
          last_used_at?: string | null
          service_name: string
          updated_at?: string
        }
        Update: {
          client_id?: string
          created_at?: string
          credential_type?: Database["public"]["Enums"]["credential_type"]
          encrypted_value?: string
          id?: string
          last_used_at?: string | null
          service_name?: string
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "api_credentials_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
        ]
      }
      clients: {
        Row: {
          created_at: string
          id: string
          name: string
          settings: NonNullable<Json>
          status: Database["public"]["Enums"]["client_status"]
          updated_at: string
        }
        Insert: {
          created_at?: string
          id?: string
          name: string
          settings?: NonNullable<Json>
          status?: Database["public"]["Enums"]["client_status"]
          updated_at?: string
        }
        Update: {
          created_at?: string
          id?: string
          name?: string
          settings?: NonNullable<Json>
          status?: Database["public"]["Enums"]["client_status"]
          updated_at?: string
        }
        Relationships: []
      }
      document_chunks: {
        Row: {
          chunk_index: number
          client_id: string
          content: string
          created_at: string
          document_id: string
          embedding: string | null
          embedding_id: string | null
          fts: unknown
          id: string
          metadata: NonNullable<Json>
          text_search_config: string | null
        }
        Insert: {
          chunk_index: number
          client_id?: string
          content: string
          created_at?: string
          document_id: string
          embedding?: string | null
          embedding_id?: string | null
          fts?: never
          id?: string
          metadata?: NonNullable<Json>
          text_search_config?: string | null
        }
        Update: {
          chunk_index?: number
          client_id?: string
          content?: string
          created_at?: string
          document_id?: string
          embedding?: string | null
          embedding_id?: string | null
          fts?: never
          id?: string
          metadata?: NonNullable<Json>
          text_search_config?: string | null
        }
        Relationships: [
          {
            foreignKeyName: "document_chunks_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "document_chunks_document_fk"
            columns: ["client_id", "document_id"]
            referencedRelation: "documents"
            referencedColumns: ["client_id", "id"]
          },
        ]
      }
      document_usage_stats: {
        Row: {
          agent_id: string
          chunk_id: string
          client_id: string
          document_id: string
          first_used_at: string
          id: string
          last_execution_id: string | null
          last_used_at: string
          usage_count: number
        }
        Insert: {
          agent_id: string
          chunk_id: string
          client_id: string
          document_id: string
          first_used_at?: string
          id?: string
          last_execution_id?: string | null
          last_used_at?: string
          usage_count?: number
        }
        Update: {
          agent_id?: string
          chunk_id?: string
          client_id?: string
          document_id?: string
          first_used_at?: string
          id?: string
          last_execution_id?: string | null
          last_used_at?: string
          usage_count?: number
        }
        Relationships: [
          {
            foreignKeyName: "document_usage_stats_agent_fk"
            columns: ["client_id", "agent_id"]
            referencedRelation: "agents"
            referencedColumns: ["client_id", "id"]
          },
          {
            foreignKeyName: "document_usage_stats_chunk_fk"
            columns: ["client_id", "chunk_id"]
            referencedRelation: "document_chunks"
            referencedColumns: ["client_id", "id"]
          },
          {
            foreignKeyName: "document_usage_stats_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "document_usage_stats_document_fk"
            columns: ["client_id", "document_id"]
            referencedRelation: "documents"
            referencedColumns: ["client_id", "id"]
          },
          {
            foreignKeyName: "document_usage_stats_execution_fk"
            columns: ["client_id", "last_execution_id"]
            referencedRelation: "agent_executions"
            referencedColumns: ["client_id", "id"]
          },
        ]
      }
      document_versions: {
        Row: {
          change_description: string | null
          change_type: Database["public"]["Enums"]["document_change_type"]
          changed_by: string | null
          client_id: string
          created_at: string
          document_id: string
          id: string
          snapshot: NonNullable<Json>
          version_number: number
        }
        Insert: {
          change_description?: string | null
          change_type: Database["public"]["Enums"]["document_change_type"]
          changed_by?: string | null
          client_id: string
          created_at?: string
          document_id: string
          id?: string
          snapshot: NonNullable<Json>
          version_number: number
        }
        Update: {
          change_description?: string | null
          change_type?: Database["public"]["Enums"]["document_change_type"]
          changed_by?: string | null
          client_id?: string
          created_at?: string
          document_id?: string
          id?: string
          snapshot?: NonNullable<Json>
          version_number?: number
        }
        Relationships: [
          {
            foreignKeyName: "document_versions_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
        ]
      }
      documents: {
        Row: {
          client_id: string
          collection_id: string
          created_at: string
          error: string | null
          file_size: number | null
          file_type: string | null
          id: string
          metadata: NonNullable<Json>
          name: string
          source_type: Database["public"]["Enums"]["document_source_type"]
          source_url: string | null
          status: Database["public"]["Enums"]["document_status"]
          updated_at: string
        }
        Insert: {
          client_id?: string
          collection_id: string
          created_at?: string
          error?: string | null
          file_size?: number | null
          file_type?: string | null
          id?: string
          metadata?: NonNullable<Json>
          name: string
          source_type?: Database["public"]["Enums"]["document_source_type"]
          source_url?: string | null
          status?: Database["public"]["Enums"]["document_status"]
          updated_at?: string
        }
        Update: {
          client_id?: string
          collection_id?: string
          created_at?: string
          error?: string | null
          file_size?: number | null
          file_type?: string | null
          id?: string
          metadata?: NonNullable<Json>
          name?: string
          source_type?: Database["public"]["Enums"]["document_source_type"]
          source_url?: string | null
          status?: Database["public"]["Enums"]["document_status"]
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "documents_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "documents_collection_fk"
            columns: ["client_id", "collection_id"]
            referencedRelation: "knowledge_collections"
            referencedColumns: ["client_id", "id"]
          },
        ]
      }
      embedding_cache: {
        Row: {
          client_id: string
          content_hash: string
          created_at: string
          embedding: string
          id: string
          model: string
        }
        Insert: {
          client_id?: string
          content_hash: string
          created_at?: string
          embedding: string
          id?: string
          model: string
        }
        Update: {
          client_id?: string
          content_hash?: string
          created_at?: string
          embedding?: string
          id?: string
          model?: string
        }
        Relationships: [
          {
            foreignKeyName: "embedding_cache_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
        ]
      }
      investigations: {
        Row: {
          anomalies_found: number
          anomaly_types: NonNullable<Json>
          client_id: string
          completed_at: string | null
          confidence_score: number | null
          created_at: string
          current_phase: string | null
          data_source: string
          error: string | null
          filters: NonNullable<Json>
          id: string
          progress: number
          query: string
          results: NonNullable<Json>
          session_id: string | null
          started_at: string | null
          status: Database["public"]["Enums"]["investigation_status"]
          summary: string | null
          total_records_analyzed: number
          updated_at: string
          user_id: string
        }
        Insert: {
          anomalies_found?: number
          anomaly_types?: NonNullable<Json>
          client_id?: string
          completed_at?: string | null
          confidence_score?: number | null
          created_at?: string
          current_phase?: string | null
          data_source: string
          error?: string | null
          filters?: NonNullable<Json>
          id?: string
          progress?: number
          query: string
          results?: NonNullable<Json>
          session_id?: string | null
          started_at?: string | null
          status?: Database["public"]["Enums"]["investigation_status"]
          summary?: string | null
          total_records_analyzed?: number
          updated_at?: string
          user_id?: string
        }
        Update: {
          anomalies_found?: number
          anomaly_types?: NonNullable<Json>
          client_id?: string
          completed_at?: string | null
          confidence_score?: number | null
          created_at?: string
          current_phase?: string | null
          data_source?: string
          error?: string | null
          filters?: NonNullable<Json>
          id?: string
          progress?: number
          query?: string
          results?: NonNullable<Json>
          session_id?: string | null
          started_at?: string | null
          status?: Database["public"]["Enums"]["investigation_status"]
          summary?: string | null
          total_records_analyzed?: number
          updated_at?: string
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "investigations_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "investigations_user_fk"
            columns: ["client_id", "user_id"]
            referencedRelation: "users"
            referencedColumns: ["client_id", "id"]
          },
        ]
      }
      knowledge_bases: {
        Row: {
          client_id: string
          created_at: string
          description: string | null
          id: string
          name: string
          text_search_config: string
          updated_at: string
        }
        Insert: {
          client_id?: string
          created_at?: string
          description?: string | null
          id?: string
          name: string
          text_search_config?: string
          updated_at?: string
        }
        Update: {
          client_id?: string
          created_at?: string
          description?: string | null
          id?: string
          name?: string
          text_search_config?: string
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "knowledge_bases_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
        ]
      }
      knowledge_collections: {
        Row: {
          client_id: string
          created_at: string
          description: string | null
          id: string
          knowledge_base_id: string
          name: string
          updated_at: string
        }
        Insert: {
          client_id?: string
          created_at?: string
          description?: string | null
          id?: string
          knowledge_base_id: string
          name: string
          updated_at?: string
        }
        Update: {
          client_id?: string
          created_at?: string
          description?: string | null
          id?: string
          knowledge_base_id?: string
          name?: string
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "knowledge_collections_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "knowledge_collections_knowledge_base_fk"
            columns: ["client_id", "knowledge_base_id"]
            referencedRelation: "knowledge_bases"
            referencedColumns: ["client_id", "id"]
          },
        ]
      }
      mcp_audit_log: {
        Row: {
          agent_id: string | null
          client_id: string
          created_at: string
          duration_ms: number
          id: string
          message: string | null
          outcome: string
          row_count: number | null
          statement: string | null
          tool: string
          transport: string
          user_id: string
        }
        Insert: {
          agent_id?: string | null
          client_id: string
          created_at?: string
          duration_ms: number
          id?: string
          message?: string | null
          outcome: string
          row_count?: number | null
          statement?: string | null
          tool: string
          transport: string
          user_id: string
        }
        Update: {
          agent_id?: string | null
          client_id?: string
          created_at?: string
          duration_ms?: number
          id?: string
          message?: string | null
          outcome?: string
          row_count?: number | null
          statement?: string | null
          tool?: string
          transport?: string
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "mcp_audit_log_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
        ]
      }
      users: {
        Row: {
          client_id: string | null
          created_at: string
          email: string | null
          id: string
          last_login: string | null
          role: Database["public"]["Enums"]["user_role"]
          status: Database["public"]["Enums"]["user_status"]
          updated_at: string
        }
        Insert: {
          client_id?: string | null
          created_at?: string
          email?: string | null
          id: string
          last_login?: string | null
          role?: Database["public"]["Enums"]["user_role"]
          status?: Database["public"]["Enums"]["user_status"]
          updated_at?: string
        }
        Update: {
          client_id?: string | null
          created_at?: string
          email?: string | null
          id?: string
          last_login?: string | null
          role?: Database["public"]["Enums"]["user_role"]
          status?: Database["public"]["Enums"]["user_status"]
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "users_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
        ]
      }
    }
    Views: {
      agent_monthly_token_usage: {
        Row: {
          agent_id: string | null
          client_id: string | null
          executions: number | null
          month: string | null
          tokens_used: number | null
        }
        Relationships: [
          {
            foreignKeyName: "agent_executions_agent_fk"
            columns: ["client_id", "agent_id"]
            referencedRelation: "agents"
            referencedColumns: ["client_id", "id"]
          },
          {
            foreignKeyName: "agent_executions_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
        ]
      }
      api_credentials_metadata: {
        Row: {
          client_id: string | null
          created_at: string | null
          credential_type: Database["public"]["Enums"]["credential_type"] | null
          id: string | null
          last_used_at: string | null
          service_name: string | null
          updated_at: string | null
        }
        Relationships: [
          {
            foreignKeyName: "api_credentials_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
        ]
      }
      client_monthly_token_usage: {
        Row: {
          client_id: string | null
          executions: number | null
          month: string | null
          tokens_used: number | null
        }
        Relationships: [
          {
            foreignKeyName: "agent_executions_client_id_fkey"
            columns: ["client_id"]
            referencedRelation: "clients"
            referencedColumns: ["id"]
          },
        ]
      }
    }
    Functions: {
      cancel_agent_execution: {
        Args: { execution_id: string }
        Returns: {
          agent_id: string
          client_id: string
          completed_at: string | null
          created_at: string
          error: string | null
          id: string
          input: NonNullable<Json>
          output: Json | null
          started_at: string | null
          status: Database["public"]["Enums"]["agent_execution_status"]
          tokens_used: number
          user_id: string | null
        }
        SetofOptions: {
          from: "*"
          to: "agent_executions"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      cancel_investigation: {
        Args: { investigation_id: string }
        Returns: {
          anomalies_found: number
          anomaly_types: NonNullable<Json>
          client_id: string
          completed_at: string | null
          confidence_score: number | null
          created_at: string
          current_phase: string | null
          data_source: string
          error: string | null
          filters: NonNullable<Json>
          id: string
          progress: number
          query: string
          results: NonNullable<Json>
          session_id: string | null
          started_at: string | null
          status: Database["public"]["Enums"]["investigation_status"]
          summary: string | null
          total_records_analyzed: number
          updated_at: string
          user_id: string
        }
        SetofOptions: {
          from: "*"
          to: "investigations"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      create_investigation: {
        Args: {
          anomaly_types?: Json
          data_source: string
          filters?: Json
          query: string
          session_id?: string
        }
        Returns: {
          anomalies_found: number
          anomaly_types: NonNullable<Json>
          client_id: string
          completed_at: string | null
          confidence_score: number | null
          created_at: string
          current_phase: string | null
          data_source: string
          error: string | null
          filters: NonNullable<Json>
          id: string
          progress: number
          query: string
          results: NonNullable<Json>
          session_id: string | null
          started_at: string | null
          status: Database["public"]["Enums"]["investigation_status"]
          summary: string | null
          total_records_analyzed: number
          updated_at: string
          user_id: string
        }
        SetofOptions: {
          from: "*"
          to: "investigations"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      hybrid_search: {
        Args: {
          collection_ids?: string[]
          full_text_weight?: number
          knowledge_base_ids?: string[]
          match_count?: number
          metadata_filter?: Json
          query_embedding: number[]
          query_text: string
          rrf_k?: number
          semantic_weight?: number
          usage_agent_id?: string
          usage_execution_id?: string
        }
        Returns: Database["public"]["CompositeTypes"]["hybrid_search_match"][]
        SetofOptions: {
          from: "*"
          to: "hybrid_search_match"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      most_used_documents: {
        Args: { agent_id?: string; match_count?: number }
        Returns: {
          agents: number
          chunks_used: number
          collection_id: string
          document_id: string
          first_used_at: string
          last_used_at: string
          name: string
          usage_count: number
        }[]
      }
      record_chunk_usage: {
        Args: { agent_id: string; chunk_ids: string[]; execution_id?: string }
        Returns: number
      }
      search_embeddings: {
        Args: {
          collection_ids?: string[]
          knowledge_base_ids?: string[]
          match_count?: number
          metadata_filter?: Json
          min_similarity?: number
          query_embedding: number[]
          usage_agent_id?: string
          usage_execution_id?: string
        }
        Returns: {
          chunk_index: number
          collection_id: string
          content: string
          document_id: string
          id: string
          knowledge_base_id: string
          metadata: Json
          similarity: number
        }[]
      }
      start_agent_execution: {
        Args: { agent_id: string; input?: Json }
        Returns: {
          agent_id: string
          client_id: string
          completed_at: string | null
          created_at: string
          error: string | null
          id: string
          input: NonNullable<Json>
          output: Json | null
          started_at: string | null
          status: Database["public"]["Enums"]["agent_execution_status"]
          tokens_used: number
          user_id: string | null
        }
        SetofOptions: {
          from: "*"
          to: "agent_executions"
          isOneToOne: true
          isSetofReturn: false
        }
      }
    }
    Enums: {
      agent_execution_status:
        | "pending"
        | "running"
        | "completed"
        | "failed"
        | "cancelled"
      agent_status: "active" | "inactive" | "archived"
      client_status: "active" | "suspended" | "inactive"
      credential_type:
        | "api_key"
        | "oauth_token"
        | "bearer_token"
        | "basic_auth"
        | "secret"
      document_change_type: "created" | "updated" | "deleted"
      document_source_type: "upload" | "url" | "text" | "storage" | "api"
      document_status: "pending" | "processing" | "ready" | "failed"
      investigation_status:
        | "pending"
        | "processing"
        | "completed"
        | "failed"
        | "cancelled"
      user_role: "viewer" | "member" | "admin"
      user_status: "active" | "suspended"
    }
    CompositeTypes: {
      hybrid_search_match: {
        id: string | null
        document_id: string | null
        collection_id: string | null
        knowledge_base_id: string | null
        content: string | null
        metadata: Json | null
        chunk_index: number | null
        similarity: number | null
        text_rank: number | null
        semantic_position: number | null
        text_position: number | null
        score: number | null
      }
    }
  }
}

type DatabaseWithoutInternals = Omit<Database, "__InternalSupabase">

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">]

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
        DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
      DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])[TableName] extends {
      Row: infer R
    }
    ? R
    : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] &
        DefaultSchema["Views"])
    ? (DefaultSchema["Tables"] &
        DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
        Row: infer R
      }
      ? R
      : never
    : never

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Insert: infer I
    }
    ? I
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Insert: infer I
      }
      ? I
      : never
    : never

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Update: infer U
    }
    ? U
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Update: infer U
      }
      ? U
      : never
    : never

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends (DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never) = never,
> = DefaultSchemaEnumNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
    ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
    : never

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends (PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never) = never,
> = PublicCompositeTypeNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][CompositeTypeName]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
    ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
    : never

export const Constants = {
  public: {
    Enums: {
      agent_execution_status: [
        "pending",
        "running",
        "completed",
        "failed",
        "cancelled",
      ],
      agent_status: ["active", "inactive", "archived"],
      client_status: ["active", "suspended", "inactive"],
      credential_type: [
        "api_key",
        "oauth_token",
        "bearer_token",
        "basic_auth",
        "secret",
      ],
      document_change_type: ["created", "updated", "deleted"],
      document_source_type: ["upload", "url", "text", "storage", "api"],
      document_status: ["pending", "processing", "ready", "failed"],
      investigation_status: [
        "pending",
        "processing",
        "completed",
        "failed",
        "cancelled",
      ],
      user_role: ["viewer", "member", "admin"],
      user_status: ["active", "suspended"],
    },
  },
} as const


/**
 * What agent files (and keel.config.ts) import from 'keel-agents'. The loader hands them this very
 * module (and this very zod), so schemas and agents built in an agent file are the runtime's own.
 */
export { z } from 'zod';
export { defineAgent, defineTool } from './agent/define';
export type { Agent, AgentConfig, Effect, Tool, ToolConfig, ToolContext } from './agent/define';
export type { SandboxedToolConfig } from './agent/define';
export type { SandboxConfig, SandboxFetch, SandboxRequestInit, SandboxResponse, SandboxToolContext } from './sandbox/grant';
export type { EgressRule, EgressRuleObject } from './sandbox/egress';
export { ToolSandboxError, EgressDeniedError } from './sandbox/sandboxError';
export { approvals } from './approval/policy';
export type { ApprovalConfig, ApprovalContext, ApprovalPolicy, ApprovalRule, CallForApproval } from './approval/policy';
export { RetryableError, NonRetryableError } from './effects/retry';
export type { RetryPolicy } from './effects/retry';
export { scriptedModel } from './model/scripted';
export type { Script, ScriptContext, ScriptedToolCall, ScriptedTurn } from './model/scripted';
export { openaiModel } from './model/openai';
export type { OpenAIModelOptions } from './model/openai';
export type { Model, ModelRequest, ModelResponse, Message, ToolCall, Usage } from './model/model';
export { agentTool } from './agent/subAgent';
export { defineConfig } from './config/keelConfig';
export type { KeelConfig } from './config/keelConfig';
export type { AgentToolOptions } from './agent/subAgent';
export type { BudgetLimits, BudgetPool } from './budget/budget';
export type { Price, PriceTable } from './budget/prices';
export type {
  AgentMemory,
  Embedder,
  Memory,
  MemoryConfig,
  MemoryPutOptions,
  MemorySearchOptions,
  Progress,
  ProgressRecord,
  ProgressUpdate,
  ThreadConfig,
} from './memory/memory';
export type { MemoryHit, MemoryItem } from './memory/memoryStore';
export type { GuardConfig, ToolChannel, UntrustedAction, UntrustedPolicy } from './guard/config';
export { unfence } from './guard/fence';
export type { AlertChannelConfig, AlertEvent, AlertRule, AlertsConfig, EditorChannel, EmailChannel, WebhookChannel } from './alerts/alertConfig';
export type { AlwaysSample, ReviewConfig, SamplingRule } from './review/reviewConfig';

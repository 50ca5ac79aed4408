// Types of the `alga:extension` imports this handler uses, as componentize-js 0.23 binds them: functions in
// camelCase, records as objects with camelCase fields, `option<T>` as `T | undefined`, `list<u8>` as
// Uint8Array, `u64` as bigint; an error of a `result<T, E>` is thrown as an Error whose `payload` is E (our
// error enums are kebab-case strings such as "not-allowed").
declare module 'alga:extension/context' {
  export interface ContextData {
    requestId?: string;
    tenantId: string;
    extensionId: string;
    installId?: string;
    versionId?: string;
  }
  export function getContext(): ContextData;
}

declare module 'alga:extension/logging' {
  export function logInfo(message: string): void;
  export function logWarn(message: string): void;
  export function logError(message: string): void;
}

declare module 'alga:extension/secrets' {
  export function get(key: string): string;
  export function listKeys(): string[];
}

declare module 'alga:extension/storage' {
  export interface StorageEntry {
    namespace: string;
    key: string;
    value: Uint8Array;
    revision?: bigint;
  }
  export function get(namespace: string, key: string): StorageEntry;
  export function put(entry: StorageEntry): StorageEntry;
  export function listEntries(namespace: string, cursor?: string): StorageEntry[];
}

declare module 'alga:extension/http' {
  export interface HttpHeader {
    name: string;
    value: string;
  }
  export interface HttpRequest {
    method: string;
    url: string;
    headers: HttpHeader[];
    body?: Uint8Array;
  }
  export interface HttpResponse {
    status: number;
    headers: HttpHeader[];
    body?: Uint8Array;
  }
  export function fetch(request: HttpRequest): HttpResponse;
}

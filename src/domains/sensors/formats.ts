// The one place the sensors service meets the format adapters and the credential vault (pure
// modules: parse, normalise, key and seal events; no database).
export {
  EVENT_TYPES,
  eventKey,
  fromCowrie,
  fromNative,
  fromOpenCanary,
  splitBatch,
  splitConcatenated,
  type AdapterResult,
  type EventType,
  type NormalizedEvent,
} from "./adapters/index.ts";
export { credentialVault, type CredentialVault, type CredentialMode } from "./credentials.ts";

// The adapters' public surface: one import for the sensors service.
export * from "./types.ts";
export { fromNative } from "./native.ts";
export { fromCowrie, cowrieEventType } from "./cowrie.ts";
export { fromOpenCanary, OPENCANARY_LOGTYPES } from "./opencanary.ts";
export { splitBatch, splitConcatenated, type Framed, type FramedItem } from "./framing.ts";
export { eventKey, EVENT_KEY_BYTES } from "./event-key.ts";

// The broker daemon as a library: start it, run its loop, stop it by setting `state.stopping`.
export { globToRegExp, isAllowed, OPERATIONS, parseRule, type Operation, type Rule } from "./access.ts";
export { runLoop, turn } from "./loop.ts";
export { startBroker, type StartOptions } from "./start.ts";
export { createState, DEFAULT_LIMITS, type BrokerState, type Limits } from "./state.ts";

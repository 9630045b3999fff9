// The broker daemon as a library: start it, run its loop, stop it by setting `state.stopping`.
export { isAllowed, parseRule, type Rule } from "./access.ts";
export { runLoop } from "./loop.ts";
export { startBroker, type BrokerOptions } from "./start.ts";

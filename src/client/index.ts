// The broker's client library: open a session, then put/get/rm/ls/status over it.
export { defaultSocket } from "./address.ts";
export {
  get, lease, ls, pools, put, putMember, rm, status, type BrokerStatus, type GetOptions, type Lease, type LeaseOptions, type PoolInfo, type PutOptions,
  type Retrieved,
} from "./ops.ts";
export { call, openSession, type Reply, type Session, type SessionOptions } from "./session.ts";

// Describing open fds: this process's (describeFd) or another's through /proc (describeProcFd).
export { classify, describeFd, openFds } from "./describe.ts";
export { describeProcFd, describeProcFds } from "./proc.ts";
export { inheritedFds, markRuntimeCloexec, requireInherited } from "./inherited.ts";
export { closedAtStartup } from "./startup.ts";
export { summarizeFd } from "./summary.ts";
export type { FdDescription, FdKind, SocketAddress, SocketDescription } from "./types.ts";
export { addSocketDetails, type SocketDetails } from "./peers.ts";
export { lazySocketTables } from "./proc-net.ts";
export { holdersOfFd, holdersOfInode, type FileHolder, type HoldersReport } from "./file-holders.ts";
export { SCAN_LIMITS, type ScanLimits } from "./holders.ts";
export type { SocketPeer } from "./types.ts";

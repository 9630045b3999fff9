// Describing open fds: this process's (describeFd) or another's through /proc (describeProcFd).
export { classify, describeFd, describeProcFd, describeProcFds, openFds } from "./describe.ts";
export { inheritedFds, requireInherited } from "./inherited.ts";
export { closedAtStartup } from "./startup.ts";
export type { FdDescription, FdKind, SocketDescription } from "./types.ts";

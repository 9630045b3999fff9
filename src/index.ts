// fdbroker as a library: pass fds between processes from a Bun program, without the CLI.
export { parseUnixAddress, type UnixAddress } from "./peer/address.ts";
export { acceptOne, connectTo as connect, socketPair } from "./peer/endpoint.ts";
export { isLive, listenUnix, socketFileOf, unlinkAddress, type FileId, type ListenOptions } from "./peer/listen.ts";
export { recvFds, sendFds, type FdMessage, type RecvOptions, type SendOptions } from "./peer/transfer.ts";
export { openSpec, parseSpec, type Spec } from "./open/spec.ts";
export {
  receiveFrom, sendTo, type Arrival, type PeerOptions, type Reception, type ReceiveOptions, type SendToOptions,
} from "./peer/session.ts";
export type { TrustedUid } from "./peer/trust.ts";
export {
  describeFd, describeProcFd, describeProcFds, inheritedFds, openFds, type FdDescription, type FdKind,
  type SocketDescription,
} from "./describe/index.ts";
export { execWithFds, resolveCommand, type ExecOptions, type PassedFd } from "./launch/exec.ts";
export { expandEnv, parseEnvTemplate, type EnvTemplate, type PlacedFd } from "./launch/env-template.ts";
export { listenEnv, SD_LISTEN_FDS_START, takeListenFds } from "./launch/listen-fds.ts";
export { placeFds, type Placement } from "./launch/place.ts";
export { supervise, type Readiness, type SuperviseOptions } from "./supervise/supervisor.ts";
// The broker: `broker.openSession({ socket })`, then `broker.put/get/rm/ls/status(session, ...)`; and the daemon.
export * as broker from "./client/index.ts";
export { runLoop as runBroker, startBroker, type BrokerOptions } from "./broker/index.ts";
export { close as closeFd, closeAll as closeFds, isSysError, SysError } from "./sys/index.ts";
export { RefusedError, UsageError } from "./errors.ts";

/**
 * The one file of the bench that imports from tools/: starting the queue under
 * `wrangler dev` or plain workerd (`npm run serve`), by runtime name. If those
 * helpers move, only this line changes.
 */
export { type QueueServer, type Runtime, runtimeLabels, runtimes, startServer } from "../tools/self-host-server.ts";

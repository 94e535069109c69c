/**
 * The one file of the bench that imports from scripts/: starting the queue under
 * `wrangler dev` or plain workerd (`npm run serve`), by runtime name. If those
 * helpers move, only this line changes.
 */
export { type QueueServer, type Runtime, runtimeLabels, runtimes, startServer } from "../scripts/self-host-server.ts";

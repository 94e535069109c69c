import app from "./app";

export { GatewayQueue } from "./queue";

export default app satisfies ExportedHandler<Env>;

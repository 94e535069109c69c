import app from "./edge/app";

export { GatewayQueue } from "./object/gateway-queue";

export default app satisfies ExportedHandler<Env>;

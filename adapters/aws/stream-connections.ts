import {
  type ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GoneException,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import type { StreamConnections } from "../../core/ports.ts";

/** Runs' stream connections on an API Gateway WebSocket API, through its management API. */
export class ApiGatewayStreamConnections implements StreamConnections {
  constructor(private readonly client: ApiGatewayManagementApiClient) {}

  async send(connectionId: string, frame: string): Promise<boolean> {
    try {
      await this.client.send(
        new PostToConnectionCommand({ ConnectionId: connectionId, Data: new TextEncoder().encode(frame) }),
      );
      return true;
    } catch (err) {
      if (err instanceof GoneException) return false;
      throw err;
    }
  }

  async close(connectionId: string): Promise<void> {
    try {
      await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (err) {
      if (!(err instanceof GoneException)) throw err;
    }
  }
}

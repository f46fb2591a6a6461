import { AwsIntegration, type RestApi } from "aws-cdk-lib/aws-apigateway";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Asset } from "aws-cdk-lib/aws-s3-assets";
import { Construct } from "constructs";
import { ERROR_CODES } from "../../core/errors.ts";
import type { StaticFile } from "../../functions/_shared/docs.ts";
import { errorBody } from "../../functions/_shared/errors.ts";

/**
 * The files served as they are (dashboard/build.ts: the interactive docs, the dashboard) on AWS: each
 * file is an asset of the stack, uploaded with it, and the API serves it at its path through an S3
 * integration, so that the pages and the API they call share one origin and stage. No Lambda runs for
 * them, no bucket is added, and the gateway's role reads those objects only.
 */
export class StaticFiles extends Construct {
  constructor(scope: Construct, id: string, props: { api: RestApi; files: Record<string, StaticFile> }) {
    super(scope, id);
    const { api, files } = props;
    const role = new Role(this, "ReadRole", { assumedBy: new ServicePrincipal("apigateway.amazonaws.com") });
    const missing = errorBody(ERROR_CODES.system, "the file could not be read");
    for (const [index, [path, file]] of Object.entries(files).entries()) {
      const asset = new Asset(this, `File${index}`, { path: file.path });
      // This object only: not the rest of the bootstrap bucket.
      role.addToPolicy(
        new PolicyStatement({
          actions: ["s3:GetObject"],
          resources: [asset.bucket.arnForObjects(asset.s3ObjectKey)],
        }),
      );
      const headers = {
        "Content-Type": file.contentType,
        "X-Content-Type-Options": "nosniff",
        ...file.headers,
      };
      const header = (name: string) => `method.response.header.${name}`;
      api.root.resourceForPath(path).addMethod(
        "GET",
        new AwsIntegration({
          service: "s3",
          integrationHttpMethod: "GET",
          path: `${asset.s3BucketName}/${asset.s3ObjectKey}`,
          options: {
            credentialsRole: role,
            integrationResponses: [
              {
                statusCode: "200",
                responseParameters: Object.fromEntries(
                  Object.entries(headers).map(([name, value]) => [header(name), `'${value}'`]),
                ),
              },
              {
                statusCode: "500",
                selectionPattern: "[45]\\d\\d",
                responseTemplates: { "application/json": missing },
              },
            ],
          },
        }),
        {
          methodResponses: [
            {
              statusCode: "200",
              responseParameters: Object.fromEntries(
                Object.keys(headers).map((name) => [header(name), true]),
              ),
            },
            { statusCode: "500" },
          ],
        },
      );
    }
  }
}

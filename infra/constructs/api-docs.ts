import { AwsIntegration, type RestApi } from "aws-cdk-lib/aws-apigateway";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Asset } from "aws-cdk-lib/aws-s3-assets";
import { Construct } from "constructs";
import { ERROR_CODES } from "../../core/errors.ts";
import { DOCS_PATH, docsFiles } from "../../functions/_shared/docs.ts";
import { errorBody } from "../../functions/_shared/errors.ts";

/**
 * The interactive docs (functions/_shared/docs.ts) on AWS: each file is an asset of the stack, uploaded
 * with it, and the API serves it at its path under /v2/docs through an S3 integration, so that the page
 * and "Try it" share the API's origin and stage. No Lambda runs for them, no bucket is added, and the
 * gateway's role reads those objects only.
 */
export class ApiDocs extends Construct {
  constructor(scope: Construct, id: string, { api }: { api: RestApi }) {
    super(scope, id);
    const role = new Role(this, "ReadRole", { assumedBy: new ServicePrincipal("apigateway.amazonaws.com") });
    const missing = errorBody(ERROR_CODES.system, "the docs file could not be read");
    const page = api.root.resourceForPath(DOCS_PATH);
    for (const [index, [name, file]] of Object.entries(docsFiles()).entries()) {
      const asset = new Asset(this, `File${index}`, { path: file.path });
      // This object only: not the rest of the bootstrap bucket.
      role.addToPolicy(
        new PolicyStatement({
          actions: ["s3:GetObject"],
          resources: [asset.bucket.arnForObjects(asset.s3ObjectKey)],
        }),
      );
      const resource = name === "" ? page : page.addResource(name);
      resource.addMethod(
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
                responseParameters: {
                  "method.response.header.Content-Type": `'${file.contentType}'`,
                  "method.response.header.X-Content-Type-Options": "'nosniff'",
                },
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
              responseParameters: {
                "method.response.header.Content-Type": true,
                "method.response.header.X-Content-Type-Options": true,
              },
            },
            { statusCode: "500" },
          ],
        },
      );
    }
  }
}

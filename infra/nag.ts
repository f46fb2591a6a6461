/** cdk-nag findings shared by several constructs, with the reason they are accepted. */

export const GRANT_WILDCARDS =
  "These wildcards come from grantReadWriteData and grantReadWrite on the one Switchyard table and bucket: " +
  "index/* is the table's GSIs, <bucket>/* its objects, and s3:GetObject* etc. are CDK's read/write action " +
  "groups. Nothing outside those two resources is granted.";
/** The findings those grants produce; the regexes match the stateful Table and Artifacts ARNs only. */
export const GRANT_WILDCARD_FINDINGS = [
  ...["GetObject*", "GetBucket*", "List*", "DeleteObject*", "Abort*"].map((action) => `Action::s3:${action}`),
  { regex: "/^Resource::.*Table.*\\/index\\/\\*$/" },
  { regex: "/^Resource::.*Artifacts.*\\/\\*$/" },
];
